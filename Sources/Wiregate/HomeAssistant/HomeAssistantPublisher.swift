import Logging
import ServiceLifecycle
import Synchronization
import WiregateCore

/// Home Assistant's MQTT discovery: every board a device, its mapped keys entities, the alarm an
/// alarm panel (see `DiscoveryCatalog` for what is announced, `DiscoveryPlan` for what is cleared).
///
/// - When the connection comes (not at each change of the broker's status): an empty retained
///   config (and state) for each one recorded in the journal that this start no longer produces
///   (no ghost entity), then every config, then every state.
/// - A key is announced the first time its board sends it (a key the config names exactly, and
///   each board's connectivity, at once). Each config is recorded in the journal before it is
///   published: what is on the broker, the next start knows of.
/// - Each value of an announced key is published retained on `<base>/<gateway>/state/<board>/<key>`
///   (Home Assistant reads states there: the event topics are not retained, and an event replayed
///   after an outage is history, not the state now); an `event` entity's value is published there
///   not retained, live reads only, so a replay or a restart never fires it again.
/// - When Home Assistant says `online`, after a random wait of up to `republish_delay`, every
///   clearing, config and state again. A clearing is forgotten only once one was published after
///   Home Assistant said `online` on this connection: one sent while it was down would remove the
///   retained config, not the entity it has.
/// - An adopted board known only from the records, and not back within `adoptedGrace` of the
///   start, is cleared: a board moved to another USB port is a new device, and the old one goes.
///
/// The readers' tap feeds `EntityValues`, which never waits; the publishing happens on this
/// service's task, paced through telemetry's share of the window, so that a burst of configs
/// never takes the places kept for alarms.
public final class HomeAssistantPublisher: Service, Sendable {
    /// How long an adopted board known from the records may take to come back after a start.
    public static let adoptedGrace = Duration.seconds(120)

    private struct State {
        /// Clear, announce and publish everything at the next wake: a connection came, Home
        /// Assistant said `online` (and the wait is over), or a burst was cut short.
        var full = false
        /// Home Assistant said `online` since this connection came: its entities see a clearing.
        var homeAssistantOnline = false
        /// Graceful shutdown began: a burst under way stops.
        var stopping = false
        /// The adopted boards' grace is over: those not back are retired.
        var retireAdopted = false
        /// Counts the connections: a birth heard on one does not make the next one's online.
        var generation = 0
    }

    private let catalog: DiscoveryCatalog
    private let journal: Journal
    private let mqtt: MQTTSink
    private let directory: BoardDirectory
    private let births: AsyncStream<HomeAssistantStatusHandler.Status>
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
    ///   - births: what Home Assistant says of itself (`HomeAssistantStatusHandler`).
    ///   - values: the last values the readers' tap keeps.
    public init(
        catalog: DiscoveryCatalog, journal: Journal, mqtt: MQTTSink, directory: BoardDirectory,
        births: AsyncStream<HomeAssistantStatusHandler.Status>, values: EntityValues, logger: Logger
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

    private func request(_ change: @Sendable (inout State) -> Void) {
        state.withLock { change(&$0) }
        wakeContinuation.yield()
    }

    /// Publishes until graceful shutdown.
    public func run() async {
        let records = await journal.discoveryRecords()
        var plan = DiscoveryPlan(catalog: catalog, records: records, boards: directory.all.map(\.board))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // A full publish when the connection comes, not at each change of its status (a
                // broker refusing one topic, then taking it again, is no reason for a flood).
                var connected = false
                for await status in self.mqtt.brokerChanges() where status.connected != connected {
                    connected = status.connected
                    let came = connected
                    self.request { state in
                        state.homeAssistantOnline = false
                        state.generation += 1
                        if came { state.full = true }
                    }
                }
            }
            group.addTask {
                for await _ in self.values.changes { self.wakeContinuation.yield() }
            }
            group.addTask {
                // A board adopted while running: its device at once.
                for await _ in self.directory.changes() { self.wakeContinuation.yield() }
            }
            group.addTask {
                // Births that came while waiting are answered by the republish they waited for.
                var answered = ContinuousClock.now - .seconds(1)
                for await status in self.births {
                    guard case .online(let heard) = status else {
                        // Its last will, or a clean stop: a clearing now would not reach its entities.
                        self.state.withLock { $0.homeAssistantOnline = false }
                        continue
                    }
                    guard heard > answered else { continue }
                    let generation = self.state.withLock { $0.generation }
                    let delay = self.catalog.settings.republishDelay
                    let longest = delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000
                    let wait = Duration.milliseconds(Int64.random(in: 0...max(0, longest)))
                    self.logger.debug("Home Assistant is online; republishing", metadata: ["after": "\(wait)"])
                    try? await Task.sleep(for: wait)
                    answered = ContinuousClock.now
                    self.request { state in
                        // Heard on an earlier connection: that one's connection publishes everything anyway.
                        guard state.generation == generation else { return }
                        state.full = true
                        state.homeAssistantOnline = true
                    }
                }
            }
            group.addTask {
                try? await Task.sleep(for: Self.adoptedGrace)
                self.request { $0.retireAdopted = true }
            }
            group.addTask {
                try? await gracefulShutdown()
                self.state.withLock { $0.stopping = true }
                self.wakeContinuation.finish()
            }
            for await _ in wake { await publish(&plan) }
            group.cancelAll()
        }
    }

    private func publish(_ plan: inout DiscoveryPlan) async {
        for reader in directory.all where !plan.knows(board: reader.board.name) { plan.add(board: reader.board) }
        let (retire, requested) = state.withLock { state in
            defer { (state.retireAdopted, state.full) = (false, false) }
            return (state.retireAdopted, state.full)
        }
        var full = requested
        if retire {
            let retired = plan.retireAbsentAdopted(present: Set(directory.snapshot().map(\.board)))
            if !retired.isEmpty {
                full = true
                logger.notice(
                    "adopted boards not back since the start: their Home Assistant devices are cleared",
                    metadata: ["boards": "\(retired.sorted().joined(separator: ", "))"])
            }
        }
        let (fresh, values, dirty) = self.values.take(all: full)
        for key in fresh {
            guard let board = directory[key.board]?.board else { continue }
            plan.add(board: board, key: key.key)
        }
        guard mqtt.isConnected else {
            // The next connection publishes everything: nothing is lost by waiting for it.
            return
        }
        // Recorded before it is published: a config on the broker is one the next start knows of,
        // whatever happens to this burst.
        await journal.recordDiscovery(plan.takeUnrecorded())
        var plain: [(topic: String, payload: String)] = []
        var clearing: [DiscoveryRecord] = []
        if full {
            plain = plan.clearingMessages()
            clearing = plan.stale
            plain += plan.configMessages()
        } else if !plan.unpublished.isEmpty {
            plain = plan.configMessages(onlyUnpublished: true)
        }
        var messages = plain.map { RetainedMessage(topic: $0.topic, payload: $0.payload) }
        let configs = messages.count
        for (key, value) in values {
            let topic = catalog.config.entityStateTopic(board: key.board, subtopic: key.key)
            if plan.component(board: key.board, key: key.key) == .event {
                // A press is published once, as it was read, never again at a republish.
                if dirty.contains(key) { messages.append(RetainedMessage(topic: topic, payload: value, retain: false)) }
            } else {
                messages.append(RetainedMessage(topic: topic, payload: value))
            }
        }
        let (online, generation) = state.withLock { ($0.homeAssistantOnline, $0.generation) }
        switch await mqtt.publishRetained(paced: messages, stop: { self.state.withLock { $0.stopping } }) {
        case .published(let refused):
            // Home Assistant online before the burst and still, on this same connection.
            let stillOnline = state.withLock { $0.homeAssistantOnline && $0.generation == generation }
            if !clearing.isEmpty && online && stillOnline {
                await journal.forgetDiscovery(clearing)
                plan.stale.removeAll { record in clearing.contains(record) }
                logger.notice(
                    "Home Assistant configs no longer produced cleared", metadata: ["count": "\(clearing.count)"])
            }
            if full {
                logger.info(
                    "Home Assistant discovery published",
                    metadata: ["configs": "\(configs)", "states": "\(values.count)", "refused": "\(refused)"])
            }
        case .stopped(let sent):
            // Cut short (the connection went, the window stayed full, or the stop): the values go
            // again with the next wake, and everything when configs were left out.
            // Not the presses: one sent again later would fire the automations again.
            self.values.markUnpublished(
                values.map { $0.key }.filter { plan.component(board: $0.board, key: $0.key) != .event })
            let retry = sent < configs
            let stopping = state.withLock { state in
                if retry { state.full = true }
                return state.stopping
            }
            guard !stopping, mqtt.isConnected else { return }
            try? await Task.sleep(for: .seconds(1))
            wakeContinuation.yield()
        }
    }
}

/// `homeassistant/status`: Home Assistant's birth (`online`) and last will (`offline`).
public struct HomeAssistantStatusHandler: MQTTMessageHandler {
    /// What Home Assistant said.
    public enum Status: Sendable, Equatable {
        /// `online`, heard at that moment.
        case online(ContinuousClock.Instant)
        /// `offline`: its last will, or a clean stop.
        case offline
    }

    private let topic: String
    private let continuation: AsyncStream<Status>.Continuation

    /// The handler, and the stream of what it hears (the publisher's).
    /// - Parameter topic: `homeassistant.status_topic`.
    public static func make(topic: String) -> (handler: HomeAssistantStatusHandler, births: AsyncStream<Status>) {
        // Kept in order, a few: an `offline` after an `online` must not be lost.
        let (stream, continuation) = AsyncStream.makeStream(of: Status.self, bufferingPolicy: .bufferingNewest(8))
        return (HomeAssistantStatusHandler(topic: topic, continuation: continuation), stream)
    }

    /// The one topic it takes.
    public var filters: [String] { [topic] }

    /// An `online` (retained or not: a retained one says Home Assistant was there, and a
    /// republish then costs nothing) schedules a republish; an `offline` says it is gone;
    /// anything else is ignored.
    public func handle(topic: String, payload: [UInt8], retained: Bool) async {
        switch String(decoding: payload, as: UTF8.self) {
        case "online": continuation.yield(.online(ContinuousClock.now))
        case "offline": continuation.yield(.offline)
        default: break
        }
    }
}
