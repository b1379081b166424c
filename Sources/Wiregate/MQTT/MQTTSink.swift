import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WiregateCore

/// The MQTT side of the gateway: keeps the broker connection, publishes events from
/// the outbox (QoS 1, bounded window), publishes availability, and hands commands
/// received on subscribed topics to the router.
public final class MQTTSink: Service, Sendable {
    public struct Counters: Sendable, Equatable {
        public var published = 0
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
    /// Events published and not yet acknowledged, by message id. A PUBACK can be handled before
    /// `publish` returned its mid to us (it comes on libmosquitto's thread), so such early acks wait here too.
    /// The first seq appended after the current connection was made; anything older is a replay.
    private let liveFrom = Mutex<Int64>(.max)
    private let awaitingAck = Mutex<(events: [Int32: JournaledEvent], early: Set<Int32>)>(([:], []))

    public init(config: GatewayConfig, password: String?, outbox: any EventOutbox, statuses: BoardStatusRegistry,
                commands: CommandRouter, logger: Logger) throws(MosquittoError) {
        self.config = config
        self.client = try MosquittoClient(options: .init(config: config, password: password))
        self.outbox = outbox
        self.statuses = statuses
        self.commands = commands
        self.window = PublishWindow(limit: config.mqtt.inflight)
        self.logger = logger
        self.statusFile = StatusFile(directory: config.gateway.stateDirectory, boards: config.boards.map(\.name)) { error in
            logger.warning("cannot write status.json", metadata: ["error": "\(error)"])
        }
    }

    /// RFC 3339 with milliseconds, UTC: the `ts` user property.
    static let timestampFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    public var counters: Counters { counterState.withLock { $0 } }
    public var isConnected: Bool { client.isConnected }

    public func run() async {
        logger.info("connecting to the broker", metadata: ["broker": "\(config.mqtt.host):\(config.mqtt.port)", "client_id": "\(config.mqtt.clientID)"])
        await statusFile.start()
        client.start()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.handleClientEvents() }
            await withTaskGroup(of: Void.self) { senders in
                senders.addTask { await self.publishEvents() }
                senders.addTask { await self.publishStatusChanges() }
                // Until SIGTERM / SIGINT (or cancellation); then stop taking events from the outbox.
                try? await gracefulShutdown()
                senders.cancelAll()
            }
            await window.close()
            await publishFarewell()
            group.cancelAll()
        }
        await client.shutdown()
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
                await publishStatus(config.gatewayStatusTopic, online: true)
                for change in await statuses.snapshot() {
                    await publishStatus(config.boardStatusTopic(change.board), online: change.online)
                }
                await window.setConnected(true)
                await statusFile.broker(connected: true)
            case .connectFailed(let reason):
                logger.warning("cannot connect to the broker, will retry", metadata: ["reason": "\(reason)"])
            case .connectionLost(let reason):
                counterState.withLock { $0.connectionLosses += 1 }
                await window.setConnected(false)
                await statusFile.broker(connected: false)
                logger.warning("lost the broker, reconnecting", metadata: ["reason": "\(reason)"])
            case .published(let mid, let reasonCode):
                let event = awaitingAck.withLock { state -> JournaledEvent? in
                    if let event = state.events.removeValue(forKey: mid) { return event }
                    state.early.insert(mid)
                    return nil
                }
                if let event { await outbox.acknowledge(event) }
                counterState.withLock {
                    $0.acknowledged += 1
                    if reasonCode >= 0x80 { $0.refusedByBroker += 1 }
                }
                if reasonCode >= 0x80 {
                    logger.error("the broker refused a message", metadata: ["reason_code": "\(reasonCode)"])
                }
                await window.release()
            case .message(let topic, let payload):
                await commands.handle(topic: topic, payload: payload)
            }
        }
    }

    private func publishEvents() async {
        while await window.acquire() {
            guard let event = await outbox.next() else {
                await window.release()
                return
            }
            do {
                let replayed = event.seq < liveFrom.withLock { $0 }
                let timestamp = event.event.receivedAt.formatted(Self.timestampFormat)
                let mid = try client.publish(topic: event.event.topic, payload: event.event.payload,
                                             userProperties: replayed
                                                ? ["seq": String(event.seq), "ts": timestamp, "replayed": "true"]
                                                : ["seq": String(event.seq), "ts": timestamp])
                counterState.withLock { $0.published += 1 }
                let early = awaitingAck.withLock { state in
                    if state.early.remove(mid) != nil { return true }
                    state.events[mid] = event
                    return false
                }
                if early { await outbox.acknowledge(event) }
            } catch {
                // Lost the connection between acquire and publish: keep the event, wait for the reconnect.
                await window.release()
                await outbox.putBack(event)
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    private func publishStatusChanges() async {
        for await change in statuses.changes {
            await statusFile.board(change.board, online: change.online)
            guard client.isConnected else { continue } // republished from the snapshot on connect
            await publishStatus(config.boardStatusTopic(change.board), online: change.online)
        }
    }

    private func publishStatus(_ topic: String, online: Bool) async {
        await window.forceAcquire()
        do {
            _ = try client.publish(topic: topic, payload: online ? "online" : "offline", retain: true)
        } catch {
            await window.release()
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
            await publishStatus(config.boardStatusTopic(board.name), online: false)
        }
        await publishStatus(config.gatewayStatusTopic, online: false)
        let deadline = ContinuousClock.now + .seconds(2)
        while await window.inFlight > 0, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
