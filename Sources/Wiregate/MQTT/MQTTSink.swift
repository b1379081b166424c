import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WiregateCore

/// The MQTT side of the gateway: keeps the broker connection, publishes events from
/// the journal (QoS 1, bounded window, critical first), acknowledges them to the
/// journal on PUBACK, publishes availability, and hands commands received on
/// subscribed topics to the router.
public final class MQTTSink: Service, Sendable {
    public struct Counters: Sendable, Equatable {
        public var published = 0
        /// PUBACKs received, status messages included.
        public var acknowledged = 0
        /// PUBACKs with a failure reason code (MQTT 5), e.g. not authorised.
        public var refusedByBroker = 0
        public var connects = 0
        public var connectionLosses = 0
    }

    private let config: GatewayConfig
    private let client: MosquittoClient
    private let outbox: any EventOutbox
    private let statuses: BoardStatusRegistry
    private let commands: CommandRouter
    private let window: PublishWindow
    private let logger: Logger
    private let statusFile: StatusFile
    private let counterState = Mutex(Counters())
    /// The first seq appended after the current connection was made; anything older is a replay.
    private let liveFrom = Mutex<Int64>(.max)

    /// - Parameter statusDirectory: where `status.json` goes: beside the journal.
    public init(config: GatewayConfig, password: String?, outbox: any EventOutbox, statusDirectory: String, statuses: BoardStatusRegistry,
                commands: CommandRouter, logger: Logger) throws {
        let window = PublishWindow(limit: config.mqtt.inflight)
        self.config = config
        self.client = try MosquittoClient(options: .init(config: config, password: password)) { mid, reasonCode in
            window.acknowledged(mid: mid, reasonCode: reasonCode)
        }
        self.outbox = outbox
        self.statuses = statuses
        self.commands = commands
        self.window = window
        self.logger = logger
        self.statusFile = StatusFile(directory: statusDirectory, boards: config.boards.map(\.name)) { error in
            logger.warning("cannot write status.json", metadata: ["error": "\(error)"])
        }
    }

    public var counters: Counters {
        let window = self.window.counts
        return counterState.withLock { counters in
            var counters = counters
            counters.acknowledged = window.acknowledged
            counters.refusedByBroker = window.refused
            return counters
        }
    }

    public var isConnected: Bool { client.isConnected }

    public func run() async {
        var connecting: Logger.Metadata = ["broker": "\(config.mqtt.host):\(config.mqtt.port)", "client_id": "\(config.mqtt.clientID)",
                                           "tls": "\(config.mqtt.tls == nil ? "off" : "on")"]
        if let tls = config.mqtt.tls {
            connecting["ca_file"] = "\(tls.caFile ?? "system")"
            connecting["certificate_name"] = "\(tls.serverName ?? config.mqtt.host)"
        }
        logger.info("connecting to the broker", metadata: connecting)
        if let problem = client.clientCertificateProblem {
            logger.error("the broker will refuse this gateway's certificate", metadata: ["problem": "\(problem)"])
        }
        await statusFile.start()
        client.start()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.handleClientEvents() }
            group.addTask { await self.forwardAcknowledgements() }
            await withTaskGroup(of: Void.self) { senders in
                senders.addTask { await self.publishEvents() }
                senders.addTask { await self.publishStatusChanges() }
                // Until SIGTERM / SIGINT (or cancellation); then stop taking events from the journal.
                try? await gracefulShutdown()
                senders.cancelAll()
            }
            window.close()
            await publishFarewell()
            group.cancelAll()
        }
        await client.shutdown()
        await outbox.acknowledge(window.takeAcknowledged())
        // What the broker has not acknowledged stays in the journal for the next start.
        await outbox.flush()
        await statusFile.stopped()
        logger.info("disconnected from the broker")
    }

    private func handleClientEvents() async {
        for await event in client.events {
            switch event {
            case .connected(let version):
                counterState.withLock { $0.connects += 1 }
                logger.info("connected to the broker", metadata: ["protocol": "MQTT \(version.rawValue)"])
                let firstLive = await outbox.beginLive()
                liveFrom.withLock { $0 = firstLive }
                subscribeToCommands()
                publishStatus(config.gatewayStatusTopic, online: true)
                for change in await statuses.snapshot() {
                    publishStatus(config.boardStatusTopic(change.board), online: change.online)
                }
                window.setConnected(true)
                await statusFile.broker(connected: true)
            case .connectFailed(let reason):
                logger.warning("cannot connect to the broker, will retry", metadata: ["reason": "\(reason)"])
            case .connectionLost(let reason):
                counterState.withLock { $0.connectionLosses += 1 }
                window.setConnected(false)
                await statusFile.broker(connected: false)
                logger.warning("lost the broker, reconnecting", metadata: ["reason": "\(reason)"])
            case .published:
                break // PUBACKs go to the window directly (see init)
            case .message(let topic, let payload):
                await commands.handle(topic: topic, payload: payload)
            }
        }
    }

    /// Hands PUBACKed events to the journal in batches when the sender is not about to (see
    /// `PublishWindow.acknowledged`), so the cursor moves also while nothing is being sent.
    private func forwardAcknowledgements() async {
        var refused = 0
        for await _ in window.signals {
            await outbox.acknowledge(window.takeAcknowledged())
            let now = window.counts.refused
            if now > refused {
                logger.error("the broker refused messages (MQTT 5 PUBACK reason code >= 0x80)", metadata: ["refused": "\(now)"])
                refused = now
            }
        }
    }

    private func publishEvents() async {
        var timestamps = TimestampFormatter()
        while true {
            let room = await window.waitForRoom()
            guard room > 0 else { return }
            // The PUBACKs that made the room go to the journal in the same hand-off.
            let events = await outbox.next(max: room, acknowledging: window.takeAcknowledged())
            guard !events.isEmpty else { return }
            let firstLive = liveFrom.withLock { $0 }
            for (index, event) in events.enumerated() {
                let timestamp = timestamps.string(from: event.event.receivedAt)
                do {
                    let mid = try client.publish(topic: event.event.topic, payload: event.event.payload,
                                                 userProperties: event.seq < firstLive
                                                    ? ["seq": String(event.seq), "ts": timestamp, "replayed": "true"]
                                                    : ["seq": String(event.seq), "ts": timestamp])
                    window.sent(mid: mid, event: event)
                } catch {
                    // Lost the connection while sending: keep the rest, send it after the reconnect.
                    await outbox.putBack(Array(events[index...]))
                    try? await Task.sleep(for: .milliseconds(100))
                    break
                }
            }
            counterState.withLock { $0.published += events.count }
        }
    }

    private func publishStatusChanges() async {
        for await change in statuses.changes {
            await statusFile.board(change.board, online: change.online, node: change.node)
            guard client.isConnected else { continue } // republished from the snapshot on connect
            publishStatus(config.boardStatusTopic(change.board), online: change.online)
        }
    }

    private func publishStatus(_ topic: String, online: Bool) {
        do {
            let mid = try client.publish(topic: topic, payload: online ? "online" : "offline", retain: true)
            window.sent(mid: mid, event: nil)
        } catch {
            logger.debug("status not published", metadata: ["topic": "\(topic)", "error": "\(error)"])
        }
    }

    private func subscribeToCommands() {
        for filter in commands.filters {
            do { try client.subscribe(filter) } catch {
                logger.error("cannot subscribe", metadata: ["filter": "\(filter)", "error": "\(error)"])
            }
        }
    }

    /// Marks every board and the gateway offline, and waits briefly for the PUBACKs.
    private func publishFarewell() async {
        guard client.isConnected else { return }
        for board in config.boards {
            publishStatus(config.boardStatusTopic(board.name), online: false)
        }
        publishStatus(config.gatewayStatusTopic, online: false)
        let deadline = ContinuousClock.now + .seconds(2)
        while window.counts.inFlight > 0, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
