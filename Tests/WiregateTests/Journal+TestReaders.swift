import Wiregate

extension Journal {
    /// The MQTT sink's reader, as the tests that play that sink use it.
    nonisolated var mqtt: JournalReader { reader(for: Journal.mqttSink, coalescingLatest: true) }
}
