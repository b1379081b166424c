import Logging
import ServiceLifecycle
import WiregateCore

/// The availability of the gateway and of its boards, as retained messages: `online` / `offline`
/// on `<base>/<gateway>/status` and `<base>/<gateway>/<board>/status`, read from the board
/// directory at the moment they are asked for.
public struct Availability: AvailabilitySource {
    private let config: GatewayConfig
    private let directory: BoardDirectory
    private let alarm: AlarmPanel?

    /// Makes the source; the directory is read only when the sink asks.
    /// - Parameters:
    ///   - config: gives the gateway's and the boards' status topics.
    ///   - directory: the boards whose online state is announced.
    ///   - alarm: the alarm panel whose state is announced; nil without one.
    public init(config: GatewayConfig, directory: BoardDirectory, alarm: AlarmPanel? = nil) {
        self.config = config
        self.directory = directory
        self.alarm = alarm
    }

    /// The gateway online, then every board (configured and adopted) as it is now, then the alarm's state.
    public func announcements() -> [RetainedMessage] {
        [message(config.gatewayStatusTopic, online: true)]
            + directory.snapshot().map { message(config.boardStatusTopic($0.board), online: $0.online) }
            + (alarm.map { [alarmState($0.status)] } ?? [])
    }

    /// The alarm's retained state message.
    public func alarmState(_ status: AlarmStatus) -> RetainedMessage {
        RetainedMessage(topic: config.alarmStateTopic, payload: status.state.rawValue)
    }

    /// Every board offline, then the gateway.
    public func farewells() -> [RetainedMessage] {
        directory.snapshot().map { message(config.boardStatusTopic($0.board), online: false) }
            + [message(config.gatewayStatusTopic, online: false)]
    }

    /// `board`'s status now (not the change that was heard of: a change that comes late must not
    /// overwrite a newer one); nil for a board the directory does not know.
    public func status(of board: String) -> RetainedMessage? {
        directory.status(of: board).map { message(config.boardStatusTopic($0.board), online: $0.online) }
    }

    private func message(_ topic: String, online: Bool) -> RetainedMessage {
        RetainedMessage(topic: topic, payload: online ? "online" : "offline")
    }
}

/// Keeps the daemon's status where people and programs look: `status.json` beside the journal
/// (for `wiregate status`), and each board's retained status topic while the broker is there.
///
/// Fed by the board directory's changes and the MQTT sink's broker changes; a service of its own
/// so that a slow SD card delays neither the boards nor the sink (a board's retained status
/// follows its status.json line, as before). Start it before the MQTT sink: a `ServiceGroup` stops
/// services in reverse, so it stops last and records the boards and the broker going away.
public final class StatusPublisher: Service, Sendable {
    private let directory: BoardDirectory
    private let availability: Availability
    private let broker: MQTTSink
    private let alarm: AlarmPanel?
    private let file: StatusFile

    /// - Parameters:
    ///   - stateDirectory: where `status.json` goes: beside the journal.
    ///   - broker: whose status is recorded, and through which boards' statuses are published.
    ///   - alarm: the alarm panel whose state is recorded and published; nil without one.
    public init(
        stateDirectory: String, directory: BoardDirectory, availability: Availability, broker: MQTTSink,
        alarm: AlarmPanel? = nil, logger: Logger
    ) {
        self.alarm = alarm
        self.directory = directory
        self.availability = availability
        self.broker = broker
        file = StatusFile(directory: stateDirectory, boards: directory.snapshot().map(\.board)) { error in
            logger.warning("cannot write status.json", metadata: ["error": "\(error)"])
        }
    }

    /// Records board and broker changes until graceful shutdown, then writes the stop (all offline) to `status.json`.
    public func run() async {
        await file.start()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await change in self.directory.changes() {
                    await self.file.board(change.board, online: change.online, node: change.node)
                    if let message = self.availability.status(of: change.board) { self.broker.publishRetained(message) }
                }
            }
            group.addTask {
                for await status in self.broker.brokerChanges() { await self.file.broker(status) }
            }
            if let alarm = self.alarm {
                group.addTask {
                    for await status in alarm.changes() {
                        await self.file.alarm(status)
                        // While the broker is away, the next connection's announcements carry it.
                        self.broker.publishRetained(self.availability.alarmState(alarm.status))
                    }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await file.stopped()
    }
}
