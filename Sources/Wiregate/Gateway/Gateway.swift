import Logging
import NIOPosix
import ServiceLifecycle
import UnixSignals
import WiregateCore

/// The composition root: builds the data path from a validated config.
///
/// ```
/// udev → DeviceWatcher (DeviceMatcher) → attaches boards to their readers, adds adopted ones to the BoardDirectory
/// board → BoardReader (termios + NIO, LineFramer, EventBuilder) → Journal (SQLite) → MQTTSink → broker
/// BoardReader → BoardDirectory (online, where) → StatusPublisher → status.json, MQTTSink (retained statuses)
/// MQTTSink (broker connected, refusing) → StatusPublisher → status.json
/// broker → MQTTSink → CommandRouter (allow-list) → BoardReader.write
/// BoardReader (tap) → EntityValues → HomeAssistantPublisher → MQTTSink (retained configs and states)
/// ```
public final class Gateway: Sendable {
    /// The validated config the gateway was built from.
    public let config: GatewayConfig
    /// The SQLite journal every event goes through; possibly the in-memory fallback (see `Journal.isDurable`).
    public let journal: Journal
    /// The configured boards' readers (adopted ones are in `directory` only).
    public let boards: [BoardReader]
    /// Every board by name, adopted ones included, with its status.
    public let directory: BoardDirectory
    /// Writes allowed commands from the broker to their boards; its counters are logged at the stop.
    public let router: CommandRouter
    /// The broker connection: publishes the journal's events and receives the commands.
    public let mqtt: MQTTSink
    /// Anchors the journal's times to the clock, and journals their corrections (issue 18).
    public let clock: ClockWatcher
    /// `status.json` and the boards' retained statuses.
    public let status: StatusPublisher
    /// Finds boards through udev; nil when every board has a fixed path and none is adopted.
    public let discovery: DeviceWatcher?
    /// Uploads the journal to the Django backend; nil without `backend:` (or with a journal in memory).
    public let backend: BackendSink?
    /// The gateway's own alarm panel; nil without `alarm:`.
    public let alarm: AlarmPanel?
    /// `wiregate alarm`'s socket; nil without `alarm:`.
    public let alarmControl: AlarmControlSocket?
    /// What every part counts and measures; its handles count nothing without `metrics:`.
    public let metrics: GatewayMetrics
    /// `/metrics`; nil without `metrics:`.
    public let metricsServer: MetricsServer?
    /// The health report: retained on `<base>/<gateway>/health`, and `health.json`.
    public let health: HealthMonitor
    /// The heartbeat to the backend; nil without `backend:` (or its token).
    public let heartbeat: HeartbeatSender?
    /// Home Assistant's discovery; nil without `homeassistant:`.
    public let homeAssistant: HomeAssistantPublisher?
    private let logger: Logger

    /// - Parameters:
    ///   - config: a validated config.
    ///   - password: the MQTT password (see `GatewayConfig.mqttPassword()`), never logged.
    ///   - backendToken: the backend's API token (see `GatewayConfig.backendToken()`), never logged.
    ///   - time: the clocks events are stamped with and anchored to (the machine's, but for tests).
    ///   - logger: where every part logs.
    /// - Throws: when no journal can be opened (not even in memory), or libmosquitto refuses the MQTT options.
    public init(
        config: GatewayConfig, password: String?, backendToken: String? = nil, time: TimeSource = .system,
        logger: Logger
    ) throws {
        self.config = config
        self.logger = logger
        // No backend reader that will never read: its cursor would keep every row.
        let sinks = [Journal.mqttSink] + (config.backend != nil && backendToken != nil ? [BackendSink.sinkName] : [])
        let registry = config.metrics.map { _ in MetricsRegistry(version: WiregateVersion.current) }
        let metrics = GatewayMetrics(config: config, sinks: sinks, factory: registry?.factory ?? MetricsRegistry.none)
        self.metrics = metrics
        let outbox = try Journal.open(
            directory: config.gateway.stateDirectory,
            memoryFallback: Journal.memoryFallbackDirectory(gatewayID: config.gateway.id),
            settings: config.journal, sinks: sinks, time: time, metrics: metrics.journal, logger: logger)
        if config.backend != nil, let backendToken, outbox.isDurable {
            backend = BackendSink(
                config: config, token: backendToken, outbox: outbox.reader(for: BackendSink.sinkName),
                stateDirectory: outbox.directory, metrics: metrics.backend, logger: logger)
        } else {
            if config.backend != nil {
                // Sequence numbers of a journal in memory may be handed out again later: the backend,
                // which deduplicates by them, must not see them.
                logger.error("backend upload off: \(backendToken == nil ? "no token" : "the journal is in memory")")
            }
            backend = nil
        }
        journal = outbox
        // A journal that fell back to memory has no backend reader: no backend backlog to report.
        let readSinks = outbox.isDurable ? sinks : [Journal.mqttSink]
        let directory = BoardDirectory(boards: config.boards.map(\.name))
        let alarm = config.alarm.map { settings in
            AlarmPanel(
                config: config, alarm: settings, directory: directory, outbox: outbox,
                // The configured one even when the journal fell back to memory: a card that went
                // read-only still holds the last state, to restore (its writes then fail, loudly).
                stateDirectory: config.gateway.stateDirectory, metrics: metrics.alarm, logger: logger)
        }
        self.alarm = alarm
        alarmControl = alarm.map {
            AlarmControlSocket(path: AlarmControlSocket.path(for: config), panel: $0, logger: logger)
        }
        let catalog = DiscoveryCatalog(config: config, version: WiregateVersion.current)
        let entityValues = catalog.map { EntityValues(catalog: $0, logger: logger) }
        // The alarm sees each read first (a keypad's code is never journaled); Home Assistant's
        // states are what is journaled.
        var tap: (@Sendable ([Event]) -> [Event])? = nil
        if alarm != nil || entityValues != nil {
            tap = { @Sendable (events: [Event]) -> [Event] in
                let kept = alarm?.tap(events) ?? events
                entityValues?.observe(kept)
                return kept
            }
        }
        let readerTap = tap
        let makeReader: @Sendable (GatewayConfig.Board) -> BoardReader = { board in
            BoardReader(
                board: board, config: config, outbox: outbox, time: time, logger: logger, tap: readerTap,
                metrics: metrics.board(board.name)
            ) {
                online, node in
                directory.report(board.name, online: online, node: node)
            }
        }
        boards = config.boards.map(makeReader)
        for reader in boards { directory.add(reader) }
        self.directory = directory
        discovery =
            config.needsDiscovery
            ? DeviceWatcher(config: config, directory: directory, logger: logger, makeReader: makeReader)
            : nil
        let router = CommandRouter(config: config, boards: directory, logger: logger, alarm: alarm, metrics: metrics)
        self.router = router
        let birthHandler = catalog.map { HomeAssistantStatusHandler.make(topic: $0.settings.statusTopic) }
        // `alarm/set` first: with adopted boards, the router's `+/set` filter covers it too.
        let handlers: [any MQTTMessageHandler] =
            (alarm.map { [AlarmCommandHandler(panel: $0, config: config, logger: logger)] } ?? [])
            + (birthHandler.map { [$0.handler] } ?? []) + [router]
        let handler: any MQTTMessageHandler = handlers.count == 1 ? router : MessageHandlers(handlers)
        let availability = Availability(config: config, directory: directory, alarm: alarm)
        let mqtt = try MQTTSink(
            config: config, password: password, outbox: outbox.reader(for: Journal.mqttSink, coalescingLatest: true),
            availability: availability,
            handler: handler, metrics: metrics.mqtt, logger: logger)
        self.mqtt = mqtt
        clock = ClockWatcher(journal: outbox, time: time, correctionsTopic: config.timeCorrectionsTopic, logger: logger)
        let collector = MetricsCollector(
            metrics: metrics, journal: outbox, sinks: readSinks, directory: directory, mqtt: mqtt, alarm: alarm)
        let record = config.backend != nil && backendToken != nil ? HeartbeatRecord() : nil
        let health = HealthMonitor(
            config: config, journal: outbox, sinks: readSinks, directory: directory, mqtt: mqtt, alarm: alarm,
            heartbeat: record, logger: logger)
        self.health = health
        if let settings = config.backend, let backendToken, let record {
            heartbeat = HeartbeatSender(
                settings: settings, token: backendToken, monitor: health, mqtt: mqtt, record: record,
                directory: directory, configuredBoards: config.boards.map(\.name), metrics: metrics.backend,
                logger: logger)
        } else {
            heartbeat = nil
        }
        if let catalog, let birthHandler, let entityValues {
            homeAssistant = HomeAssistantPublisher(
                catalog: catalog, journal: outbox, mqtt: mqtt, directory: directory, births: birthHandler.births,
                values: entityValues, logger: logger)
        } else {
            homeAssistant = nil
        }
        if let settings = config.metrics, let registry {
            metricsServer = MetricsServer(
                settings: settings, registry: registry, logger: logger, collect: collector.collect)
        } else {
            metricsServer = nil
        }
        status = StatusPublisher(
            stateDirectory: outbox.directory, directory: directory, availability: availability,
            broker: mqtt, alarm: alarm, logger: logger)
        // Each WATCHDOG=1 waits for the journal and the alarm's decision loop to answer: a daemon
        // whose alarm is stuck is restarted by systemd; one whose broker is gone is not asked about it.
        notifier = SystemdNotifier(logger: logger) {
            let boards = directory.counts
            let pending = await outbox.pendingCount().values.reduce(0, +)
            var alarmState = ""
            if let alarm {
                await alarm.heartbeat()
                alarmState = ", alarm \(alarm.status.state.rawValue)"
            }
            return
                "broker \(mqtt.isConnected ? "connected" : "NOT connected"), \(boards.online)/\(boards.known) boards online, "
                + "\(pending) events pending, last seq \(await outbox.lastSeq)\(alarmState)"
        }
    }

    /// The services in start order; a `ServiceGroup` stops them in reverse: the alarm panel
    /// first (boards closing at a stop must not look like cut cables to it), discovery and
    /// boards next, so the MQTT sink can say every board went offline, and the status publisher
    /// last, so `status.json` records everything going away.
    public var services: [any Service] {
        // The clock first: the start's anchor before any event is read.
        var services: [any Service] = [clock, status, mqtt, health]
        if let homeAssistant { services.append(homeAssistant) }
        if let metricsServer { services.append(metricsServer) }
        if let backend { services.append(backend) }
        services += boards as [any Service]
        if let discovery { services.append(discovery) }
        if let alarm { services.append(alarm) }
        if let alarmControl { services.append(alarmControl) }
        // Stopped first: a heartbeat sent while the boards close would say they are offline.
        if let heartbeat { services.append(heartbeat) }
        services.append(notifier)
        return services
    }

    /// systemd's READY=1, STATUS= and WATCHDOG=1; started last, so READY=1 comes once everything else has.
    public let notifier: SystemdNotifier

    /// Runs until SIGTERM or SIGINT (or cancellation), then stops cleanly.
    public func run(signals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) },
                gracefulShutdownSignals: signals,
                logger: logger))
        do {
            try await group.run()
        } catch {
            // A service that ended out of turn: what the journal holds is still committed.
            await journal.close()
            throw error
        }
        await journal.close()
    }
}
