import WiregateCore

/// Sets the gauges that are read rather than counted, from their holders, just before a scrape:
/// the boards up (the directory), the backlogs and the journal's size (the journal), the
/// messages in flight (the MQTT sink), the clock, the alarm's state. Each fact keeps its one
/// holder; the gauges are its reading at the scrape.
public struct MetricsCollector: Sendable {
    let metrics: GatewayMetrics
    let journal: Journal
    let sinks: [String]
    let directory: BoardDirectory
    let mqtt: MQTTSink
    let alarm: AlarmPanel?

    /// - Parameters:
    ///   - metrics: the handles to set.
    ///   - journal: whose backlogs (for each of `sinks`), quarantine and size are read.
    ///   - directory: whose boards are up or not.
    ///   - mqtt: whose in-flight count is read.
    ///   - alarm: whose state is read; nil without one.
    public init(
        metrics: GatewayMetrics, journal: Journal, sinks: [String], directory: BoardDirectory, mqtt: MQTTSink,
        alarm: AlarmPanel?
    ) {
        self.metrics = metrics
        self.journal = journal
        self.sinks = sinks
        self.directory = directory
        self.mqtt = mqtt
        self.alarm = alarm
    }

    /// Reads every holder and sets its gauges.
    public func collect() async {
        let configured = metrics.configuredBoards
        var adoptedOnline = 0
        for status in directory.snapshot() {
            if let handles = configured[status.board] {
                handles.up.record(status.online ? 1 : 0)
            } else if status.online {
                adoptedOnline += 1
            }
        }
        metrics.adoptedBoards.up.record(adoptedOnline)
        metrics.mqtt.inFlight.record(mqtt.inFlight)
        for sink in sinks {
            for (eventClass, backlog) in await journal.backlog(sink: sink) {
                metrics.journal.backlog(sink: sink, eventClass, pending: backlog.pending, oldest: backlog.oldest)
            }
            metrics.journal.quarantined(sink: sink, await journal.quarantinedCount(sink: sink))
        }
        metrics.journal.size.record(journal.sizeInBytes)
        metrics.clock.synchronised.record(journal.clockSynchronised() ? 1 : 0)
        if let alarm {
            let status = alarm.status
            metrics.alarm.state(status.state)
            metrics.alarm.sirensSounding.record(status.state == .triggered ? 1 : 0)
        }
    }
}
