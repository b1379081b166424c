import Logging
import ServiceLifecycle
import Synchronization
import WiregateCore

/// Home Assistant's MQTT discovery: every board a device, its mapped keys entities, the alarm an
/// alarm panel (see `DiscoveryCatalog` for what is announced).
///
/// - At every connection: first an empty retained config for each one recorded in the journal
///   that this start no longer produces (no ghost entity), then every config, then every state.
/// - A key is announced the first time its board sends it (a key the config names exactly, and
///   each board's connectivity, at once); each announced config is recorded in the journal.
/// - Each value of an announced key is published retained on `<base>/<gateway>/state/<board>/<key>`
///   (Home Assistant reads states there: the event topics are not retained, and an event replayed
///   after an outage is history, not the state now).
/// - When Home Assistant says `online`, after a random wait of up to `republish_delay`, every
///   config and state again.
///
/// The readers' tap hands it each read's events (`observe`), which never waits; the publishing
/// happens on its own task, paced, so that a burst of configs never queues ahead of an alarm.
public final class HomeAssistantPublisher: Service, Sendable {
    private struct State {
        /// A connection came: clear, announce and publish everything.
        var connected = false
        /// Home Assistant said `online` and the wait is over: announce and publish everything.
        var republish = false
    }

    private let catalog: DiscoveryCatalog
    private let journal: Journal
    private let mqtt: MQTTSink
    private let directory: BoardDirectory
    private let births: AsyncStream<Void>
    private let values: EntityValues
    private let logger: Logger
    private let state = Mutex(State())
    private let wake: AsyncStream<Void>
    private let wakeContinuation: AsyncStream<Void>.Continuation

    /// - Parameters:
    ///   - catalog: what is announced.
    ///   - journal: where the configs published are recorded.
    ///   - mqtt: the broker connection.
    ///   - directory: the boards, configured and adopted.
    ///   - births: each `online` Home Assistant says (`HomeAssistantStatusHandler`).
    ///   - values: the last values the readers' tap keeps.
    public init(
        catalog: DiscoveryCatalog, journal: Journal, mqtt: MQTTSink, directory: BoardDirectory,
        births: AsyncStream<Void>, values: EntityValues, logger: Logger
    ) {
        self.catalog = catalog
        self.values = values
        self.journal = journal
        self.mqtt = mqtt
        self.directory = directory
        self.births = births
        self.logger = logger
        (wake, wakeContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    // MARK: - The publishing side

    /// Publishes until graceful shutdown.
    public func run() async {
        let records = await journal.discoveryRecords()
        var plan = DiscoveryPlan(catalog: catalog, records: records, boards: directory.all.map(\.board))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await status in self.mqtt.brokerChanges() where status.connected {
                    self.state.withLock { $0.connected = true }
                    self.wakeContinuation.yield()
                }
            }
            group.addTask {
                for await _ in self.values.changes {
                    self.wakeContinuation.yield()
                }
            }
            group.addTask {
                // A board adopted while running: its device at once.
                for await status in self.directory.changes() {
                    _ = status
                    self.wakeContinuation.yield()
                }
            }
            group.addTask {
                var pending = false
                for await _ in self.births where !pending {
                    pending = true
                    let delay = self.catalog.settings.republishDelay
                    let longest = delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000
                    let wait = Duration.milliseconds(Int64.random(in: 0...max(0, longest)))
                    self.logger.debug("Home Assistant is online; republishing", metadata: ["after": "\(wait)"])
                    try? await Task.sleep(for: wait)
                    pending = false
                    self.state.withLock { $0.republish = true }
                    self.wakeContinuation.yield()
                }
            }
            group.addTask {
                try? await gracefulShutdown()
                self.wakeContinuation.finish()
            }
            for await _ in wake { await publish(&plan) }
            group.cancelAll()
        }
    }

    private func publish(_ plan: inout DiscoveryPlan) async {
        for reader in directory.all where !plan.knows(board: reader.board.name) { plan.add(board: reader.board) }
        let full = state.withLock { state in
            defer { (state.connected, state.republish) = (false, false) }
            return state.connected || state.republish
        }
        let (fresh, values) = self.values.take(all: full)
        for key in fresh {
            guard let board = directory[key.board]?.board else { continue }
            plan.add(board: board, key: key.key)
        }
        guard mqtt.isConnected else {
            // The next connection publishes everything: nothing is lost by waiting for it.
            return
        }
        var messages: [RetainedMessage] = []
        var clearing: [String] = []
        if full {
            let clears = plan.clearingMessages()
            messages += clears.map { RetainedMessage(topic: $0.topic, payload: $0.payload) }
            clearing = plan.stale.map(\.topic)
            messages += plan.configMessages().map { RetainedMessage(topic: $0.topic, payload: $0.payload) }
        } else if !plan.unpublished.isEmpty {
            messages += plan.configMessages(onlyUnpublished: true).map {
                RetainedMessage(topic: $0.topic, payload: $0.payload)
            }
        }
        let configs = messages.count
        messages += values.map { key, value in
            RetainedMessage(topic: catalog.config.entityStateTopic(board: key.board, subtopic: key.key), payload: value)
        }
        let published = await mqtt.publishRetained(paced: messages)
        if published >= configs {
            if !clearing.isEmpty {
                await journal.forgetDiscovery(clearing)
                logger.notice(
                    "Home Assistant configs no longer produced cleared", metadata: ["count": "\(clearing.count)"])
                plan.stale.removeAll()
            }
            await journal.recordDiscovery(plan.takeUnrecorded())
        }
        if published < messages.count {
            // The connection went mid-way: the next one publishes everything again.
            self.values.markUnpublished(values.map(\.key))
        } else if full {
            logger.info(
                "Home Assistant discovery published", metadata: ["configs": "\(configs)", "states": "\(values.count)"])
        }
    }
}

/// `homeassistant/status`: Home Assistant's birth (`online`) and last will (`offline`).
public struct HomeAssistantStatusHandler: MQTTMessageHandler {
    private let topic: String
    private let continuation: AsyncStream<Void>.Continuation

    /// The handler, and the stream of each `online` it hears (the publisher's).
    /// - Parameter topic: `homeassistant.status_topic`.
    public static func make(topic: String) -> (handler: HomeAssistantStatusHandler, births: AsyncStream<Void>) {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        return (HomeAssistantStatusHandler(topic: topic, continuation: continuation), stream)
    }

    /// The one topic it takes.
    public var filters: [String] { [topic] }

    /// An `online` (retained or not: a retained one says Home Assistant was there, and a
    /// republish then costs nothing) schedules a republish; anything else is ignored.
    public func handle(topic: String, payload: [UInt8], retained: Bool) async {
        guard String(decoding: payload, as: UTF8.self) == "online" else { return }
        continuation.yield()
    }
}
