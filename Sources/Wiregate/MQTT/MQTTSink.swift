import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WiregateCore

/// The MQTT side of the gateway: keeps the broker connection, publishes events from
/// the journal (QoS 1, bounded window, critical first), acknowledges them to the
/// journal on PUBACK, publishes its availability source's retained messages, and hands the
/// messages received on subscribed topics to its handler (the command router). It is the one
/// holder of the broker connection's status (`brokerChanges()`: the status now, then each change).
public final class MQTTSink: Service, Sendable {
    /// The sink's running totals since it was made, logged at the stop (`wiregate run`).
    public struct Counters: Sendable, Equatable {
        /// Events handed to libmosquitto; an event sent again after a lost connection counts again.
        public var published = 0
        /// Events the broker acknowledged (accepted PUBACKs); at most `published`.
        public var acknowledged = 0
        /// Status messages (availability, boards' status) the broker acknowledged.
        public var statusAcknowledged = 0
        /// PUBACKs with a failure reason code (MQTT 5), e.g. not authorised.
        public var refusedByBroker = 0
        /// Events moved to the quarantine: libmosquitto or the broker can never take them as they are.
        public var quarantined = 0
        /// PUBACKs for a message id the window did not hold (logged, ignored).
        public var unknownAcknowledgements = 0
        /// Connections accepted by the broker (CONNACKs), the first one included.
        public var connects = 0
        /// Established connections that went away; a failed attempt does not count.
        public var connectionLosses = 0
        /// Messages on subscribed topics dropped: too large, or the handler had fallen `handlerQueue` behind.
        public var messagesDropped = 0
    }

    /// Received messages waiting for the handler at most: beyond, the oldest are dropped (logged
    /// and counted) rather than held in memory behind a stalled board; the newest command (a siren
    /// switched off after it was switched on) is the one kept.
    static let handlerQueue = 256
    /// The largest message handed to the handler: a command is one short line, and a queue of
    /// 256 must not hold 256 of the broker's largest packets.
    static let handlerMessageBytes = 4096

    private let config: GatewayConfig
    private let client: MosquittoClient
    private let outbox: any OutboxReader
    private let availability: any AvailabilitySource
    private let handler: any MQTTMessageHandler
    /// A message received on a subscribed topic, waiting for the handler.
    private typealias Received = (topic: String, payload: [UInt8], retained: Bool)
    private let received: AsyncStream<Received>
    private let receivedContinuation: AsyncStream<Received>.Continuation
    private let window: PublishWindow
    private let logger: Logger
    private let metrics: MQTTMetrics
    private let broker = Mutex((status: BrokerStatus(), followers: Followers<BrokerStatus>()))
    private let counterState = Mutex(Counters())
    /// The quarantine reasons already logged in this run.
    private let quarantineReasonsLogged = Mutex<Set<String>>([])
    /// The first seq appended after the current connection was made; anything older is a replay.
    private let liveFrom = Mutex<Int64>(.max)
    /// Events the broker refused for now (MQTT 5 PUBACK 0x87, 0x97…), held aside and sent again
    /// after a backoff while everything else goes on: one topic the ACL misses must not hold up
    /// the alarms on the others. They stay handed out in the journal, so its cursor waits for them
    /// and they survive a restart.
    private let held = Mutex(HeldBack())

    private struct HeldBack {
        var events: [JournaledEvent] = []
        /// Held-back events sent again and awaiting their answer: the refusal is over only once
        /// none is held and none of these is still unanswered.
        var retried: Set<Int64> = []
        var reason: String?
        var backoff = Backoff(initial: .seconds(1), maximum: .seconds(30))
        var retryAt: ContinuousClock.Instant?
    }

    /// - Parameters:
    ///   - config: a validated config.
    ///   - password: the MQTT password, never logged.
    ///   - outbox: this sink's reader of the journal: the events come from it, their acknowledgements go to it.
    ///   - availability: what is announced, retained, at every connection and at a clean disconnect.
    ///   - handler: what messages on its `filters` go to (the command router).
    ///   - metrics: what the sink counts for `/metrics`.
    /// - Throws: `MosquittoError` when libmosquitto refuses the options; `BrokerTLSError` when a
    ///   TLS file cannot be loaded; `SystemCallError` when the client's wake pipe cannot be made.
    public init(
        config: GatewayConfig, password: String?, outbox: any OutboxReader, availability: any AvailabilitySource,
        handler: any MQTTMessageHandler, metrics: MQTTMetrics = GatewayMetrics.none.mqtt, logger: Logger
    ) throws {
        let window = PublishWindow(limit: config.mqtt.inflight)
        self.config = config
        self.client = try MosquittoClient(options: .init(config: config, password: password)) { mid, reasonCode in
            window.answered(mid: mid, reasonCode: reasonCode)
        }
        self.outbox = outbox
        self.availability = availability
        self.handler = handler
        (received, receivedContinuation) = AsyncStream.makeStream(
            of: Received.self, bufferingPolicy: .bufferingNewest(Self.handlerQueue))
        self.window = window
        self.logger = logger
        self.metrics = metrics
    }

    /// The broker connection's status now, then every change, in order, for one consumer; ends
    /// when the consumer stops reading, or when the sink has stopped.
    public func brokerChanges() -> AsyncStream<BrokerStatus> {
        broker.withLock { broker in
            broker.followers.add(startingWith: [broker.status]) { [weak self] id in
                self?.broker.withLock { $0.followers.remove(id) }
            }
        }
    }

    private func updateBroker(_ change: (inout BrokerStatus) -> Void) {
        broker.withLock { broker in
            var status = broker.status
            change(&status)
            guard status != broker.status else { return }
            broker.status = status
            broker.followers.yield(status)
        }
    }

    /// A snapshot of the totals, read from any thread; the acknowledgement counts come from the publish window.
    public var counters: Counters {
        let window = self.window.counts
        return counterState.withLock { counters in
            var counters = counters
            counters.acknowledged = window.acknowledged
            counters.statusAcknowledged = window.statusAcknowledged
            counters.refusedByBroker = window.refused
            counters.unknownAcknowledgements = window.unknown
            return counters
        }
    }

    /// Whether the broker connection is up and taking messages (the client's publish gate).
    public var isConnected: Bool { client.isConnected }

    /// The broker connection's status now (`brokerChanges()` follows it).
    public var currentBrokerStatus: BrokerStatus { broker.withLock { $0.status } }

    /// Messages sent and not yet acknowledged.
    public var inFlight: Int { window.counts.inFlight }

    /// Connects and publishes until graceful shutdown, then says farewell, disconnects and flushes the journal.
    public func run() async {
        var connecting: Logger.Metadata = [
            "broker": "\(config.mqtt.host):\(config.mqtt.port)", "client_id": "\(config.mqtt.clientID)",
            "tls": "\(config.mqtt.tls == nil ? "off" : "on")"
        ]
        if let tls = config.mqtt.tls {
            connecting["ca_file"] = "\(tls.caFile ?? "system")"
            connecting["certificate_name"] = "\(tls.serverName ?? config.mqtt.host)"
        }
        logger.info("connecting to the broker", metadata: connecting)
        if let problem = client.clientCertificateProblem {
            logger.error("the broker will refuse this gateway's certificate", metadata: ["problem": "\(problem)"])
        }
        client.start()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.handleClientEvents() }
            group.addTask { await self.handleReceivedMessages() }
            group.addTask { await self.forwardAcknowledgements() }
            await withTaskGroup(of: Void.self) { senders in
                // A sender per class: an alarm waits for one free place on the wire, never for telemetry's room.
                senders.addTask { await self.publishEvents(.critical) }
                senders.addTask { await self.publishEvents(.telemetry) }
                senders.addTask { await self.retryHeldBack() }
                // Until SIGTERM / SIGINT (or cancellation); then stop taking events from the journal.
                try? await gracefulShutdown()
                senders.cancelAll()
            }
            window.close()
            await publishFarewell()
            group.cancelAll()
        }
        if !(await client.shutdown()) {
            logger.warning(
                "the broker connection did not close within connect_timeout (a connect that hangs): stopping anyway")
        }
        await outbox.acknowledge(await takeAcknowledged())
        // What the broker has not acknowledged stays in the journal for the next start.
        await outbox.flush()
        // Disconnected; the last refusal stays on record for `wiregate status` after the stop.
        updateBroker { $0.connected = false }
        metrics.connected.record(0)
        broker.withLock { $0.followers.removeAll() }.finish()
        logger.info("disconnected from the broker")
    }

    private func handleClientEvents() async {
        for await event in client.events {
            switch event {
            case .connected(let version, let receiveMaximum):
                counterState.withLock { $0.connects += 1 }
                metrics.connects.increment()
                logger.info(
                    "connected to the broker",
                    metadata: ["protocol": "MQTT \(version.rawValue)", "receive_maximum": "\(receiveMaximum)"])
                // What was appended before this connection is a replay to this broker.
                let firstLive = await outbox.destinationConnected()
                liveFrom.withLock { $0 = firstLive }
                subscribeToCommands()
                for message in availability.announcements() { publish(message) }
                window.setConnected(true, receiveMaximum: receiveMaximum)
                updateBroker { $0.connected = true }
                metrics.connected.record(1)
            case .connectFailed(let reason):
                metrics.connectFailures.increment(BrokerFailureReason(describing: reason))
                logger.warning("cannot connect to the broker, will retry", metadata: ["reason": "\(reason)"])
            case .connectionLost(let reason):
                counterState.withLock { $0.connectionLosses += 1 }
                window.setConnected(false)
                updateBroker { $0.connected = false }
                metrics.connected.record(0)
                metrics.disconnects.increment(BrokerFailureReason(describing: reason))
                logger.warning("lost the broker, reconnecting", metadata: ["reason": "\(reason)"])
            case .published:
                break  // PUBACKs go to the window directly (see init)
            case .message(let topic, let payload, let retained):
                guard payload.count <= Self.handlerMessageBytes else {
                    dropReceived(
                        topic: topic,
                        because: "larger than \(Self.handlerMessageBytes) bytes (a command is one short line)")
                    continue
                }
                if case .dropped(let oldest) = receivedContinuation.yield((topic, payload, retained)) {
                    dropReceived(
                        topic: oldest.topic,
                        because: "the command handler is \(Self.handlerQueue) messages behind (the oldest goes)")
                }
            }
        }
        receivedContinuation.finish()
    }

    private func dropReceived(topic: String, because reason: String) {
        let dropped = counterState.withLock { counters in
            counters.messagesDropped += 1
            return counters.messagesDropped
        }
        // The first and then every hundredth: a flood must not flood the log too.
        if dropped % 100 == 1 {
            logger.error("message dropped: \(reason)", metadata: ["topic": "\(topic)", "dropped_total": "\(dropped)"])
        }
    }

    /// Hands the received messages to the handler, in order, off the connection's loop.
    private func handleReceivedMessages() async {
        for await message in received {
            await handler.handle(topic: message.topic, payload: message.payload, retained: message.retained)
        }
    }

    /// Hands PUBACKed events to the journal in batches when the sender is not about to (see
    /// `PublishWindow.answered`), so the cursor moves also while nothing is being sent; and deals
    /// with what the broker refused.
    private func forwardAcknowledgements() async {
        var unknown = 0
        for await _ in window.signals {
            await outbox.acknowledge(await takeAcknowledged())
            await handleRefusals(window.takeRefused())
            let now = window.counts.unknown
            if now > unknown {
                logger.warning("PUBACK for a message id not in flight: ignored", metadata: ["unknown_total": "\(now)"])
                unknown = now
            }
        }
    }

    /// A refusal that can never succeed for that message quarantines it; any other holds the event
    /// back, to be sent again after a backoff (a configuration or load problem: the ACL, a quota).
    /// A refused message is never acknowledged to the journal.
    private func handleRefusals(_ refused: [(item: JournaledEvent, verdict: PubackVerdict)]) async {
        var retry: [JournaledEvent] = []
        var reason: String?
        for (event, verdict) in refused {
            switch verdict {
            case .accepted: break
            case .refusedForGood(let why):
                held.withLock { _ = $0.retried.remove(event.seq) }
                await quarantine(event, code: 0, reason: "the broker refused it: \(why)")
            case .refusedForNow(let why):
                metrics.published([event.event.eventClass], .refused)
                retry.append(event)
                reason = why
            }
        }
        guard let reason else { return }
        let (delay, first) = held.withLock { state -> (Duration, Bool) in
            let first = state.reason == nil
            state.events += retry
            state.retried.subtract(retry.map(\.seq))
            state.reason = reason
            let delay = state.backoff.nextDelay()
            state.retryAt = .now + delay
            return (delay, first)
        }
        updateBroker { $0.refusing = reason }
        if first {
            logger.error(
                "the broker refused messages; they stay in the journal and are sent again",
                metadata: [
                    "reason": "\(reason)", "refused": "\(retry.count)", "retry_in": "\(delay)"
                ])
        }
    }

    /// Sends the held-back events again once their backoff is over.
    private func retryHeldBack() async {
        var timestamps = TimestampFormatter()
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
            let due = held.withLock { state -> [JournaledEvent] in
                guard let retryAt = state.retryAt, retryAt <= .now, !state.events.isEmpty else { return [] }
                state.retryAt = nil
                state.retried.formUnion(state.events.map(\.seq))
                defer { state.events.removeAll() }
                return state.events.sorted { $0.seq < $1.seq }
            }
            guard !due.isEmpty, client.isConnected else {
                if !due.isEmpty {
                    held.withLock {
                        $0.events += due; $0.retryAt = .now + .seconds(1)
                    }
                }
                continue
            }
            let firstLive = liveFrom.withLock { $0 }
            // Held across a clock anchor maybe (refused before the clock was set): dated again.
            let dated = await outbox.dated(due)
            for (index, event) in dated.enumerated() {
                guard let deferral = await send(event, firstLive: firstLive, timestamps: &timestamps) else { continue }
                // Not taken (the connection went, a broker setting, memory): this one and the rest
                // are held again, in order, not orphaned.
                let rest = dated[index...]
                held.withLock { state in
                    state.events += rest
                    state.retried.subtract(rest.map(\.seq))
                    if case .notConnected = deferral {
                        state.retryAt = state.retryAt ?? .now + .seconds(1)
                    } else {
                        state.retryAt = state.retryAt ?? .now + state.backoff.nextDelay()
                    }
                }
                break
            }
        }
    }

    /// The events the broker acknowledged since the last call; when no refused event is held back
    /// any more, the refusal is over.
    private func takeAcknowledged() async -> [JournaledEvent] {
        let acknowledged = window.takeAcknowledged()
        guard !acknowledged.isEmpty else { return acknowledged }
        metrics.published(acknowledged.map(\.event.eventClass), .acknowledged)
        metrics.lastAcknowledgement.record(Date().timeIntervalSince1970)
        let over = held.withLock { state -> Bool in
            state.retried.subtract(acknowledged.map(\.seq))
            guard state.reason != nil, state.events.isEmpty, state.retried.isEmpty else { return false }
            state.reason = nil
            state.backoff.reset()
            return true
        }
        if over {
            updateBroker { $0.refusing = nil }
            logger.notice("the broker takes the messages it refused")
        }
        return acknowledged
    }

    /// Moves an event that can never be published as it is to the quarantine, so that it stalls
    /// nothing behind it; counted, and logged (once per run for each reason: a board repeating the
    /// same bad line must not flood the log).
    private func quarantine(_ event: JournaledEvent, code: Int32, reason: String) async {
        await outbox.quarantine([event], status: Int(code), response: reason)
        counterState.withLock { $0.quarantined += 1 }
        metrics.published([event.event.eventClass], .quarantined)
        let first = quarantineReasonsLogged.withLock { $0.insert(reason).inserted }
        if first {
            logger.error(
                "message quarantined: it can never be published as it is",
                metadata: [
                    "board": "\(event.event.board)", "seq": "\(event.seq)", "reason": "\(reason)"
                ])
        }
    }

    private func publishEvents(_ eventClass: EventClass) async {
        var timestamps = TimestampFormatter()
        var standingAside: ContinuousClock.Instant?
        var notTaken = Backoff(initial: .milliseconds(100), maximum: .seconds(30))
        var notTakenSince: ContinuousClock.Instant?
        while !Task.isCancelled {
            let room = await window.waitForRoom(for: eventClass)
            guard room > 0 else { return }
            // Critical first, also across the two senders: no telemetry while alarms wait (a replay
            // sends every critical event before any telemetry). Only the rare moment an alarm is
            // being handed over costs the telemetry sender a few milliseconds.
            // At most a second at a time: a critical row that cannot be read (a damaged page) must
            // not stop telemetry for good.
            if eventClass == .telemetry, await outbox.hasUnsent(.critical) {
                let since = standingAside ?? .now
                standingAside = since
                if ContinuousClock.now - since < .seconds(1) {
                    try? await Task.sleep(for: .milliseconds(2))
                    continue
                }
            }
            standingAside = nil
            // The PUBACKs that made the room go to the journal in the same hand-off.
            let events = await outbox.next(max: room, classes: [eventClass], acknowledging: await takeAcknowledged())
            guard !events.isEmpty else { return }
            let firstLive = liveFrom.withLock { $0 }
            for (index, event) in events.enumerated() {
                guard let deferral = await send(event, firstLive: firstLive, timestamps: &timestamps) else { continue }
                // Not taken, for a reason that may pass (or a broker setting): the rest goes back, first.
                await outbox.putBack(Array(events[index...]))
                guard case .notTaken(let error) = deferral else {
                    // The connection went (or is being made again): the window learns it from the
                    // client's events, and holds the sender until the next `connected`.
                    try? await Task.sleep(for: .milliseconds(20))
                    break
                }
                let delay = notTaken.nextDelay()
                if notTakenSince == nil {
                    // Once per episode: a broker setting (max_qos 0) would otherwise log forever.
                    notTakenSince = .now
                    logger.error("libmosquitto does not take messages, will retry", metadata: ["error": "\(error)"])
                    updateBroker { $0.refusing = "libmosquitto: \(error)" }
                }
                try? await Task.sleep(for: delay)
                break
            }
            if notTakenSince != nil, window.counts.inFlight > 0 {
                notTakenSince = nil
                notTaken.reset()
                // Unless the broker still refuses held-back events: that is the status then.
                if held.withLock({ $0.reason == nil }) { updateBroker { $0.refusing = nil } }
            }
        }
    }

    /// Why `send` left an event with its caller.
    private enum Deferral {
        /// No connection, or one not ready for new messages yet (see `MosquittoClient`'s publish gate).
        case notConnected
        /// libmosquitto did not take it, for a reason that may pass (memory, a broker setting).
        case notTaken(MosquittoError)
    }

    /// Publishes one event through the window.
    /// - Returns: why the event is still the caller's; nil when it was queued, or quarantined as
    ///   never publishable.
    private func send(_ event: JournaledEvent, firstLive: Int64, timestamps: inout TimestampFormatter) async
        -> Deferral?
    {
        let properties = event.userProperties(replayed: event.seq < firstLive, timestamps: &timestamps)
        let (result, resend) = window.publish(event) {
            client.publish(topic: event.event.topic, payload: event.event.payload, userProperties: properties)
        }
        if !resend.isEmpty {
            // The library reused an id an unanswered message held: neither answer can be trusted.
            await outbox.putBack(resend)
        }
        switch result {
        case .queued:
            counterState.withLock { $0.published += 1 }
            return nil
        case .refused(let error):
            // Not a lost connection: this message can never go as it is. It must not hold up
            // every later event of its class.
            held.withLock { _ = $0.retried.remove(event.seq) }
            await quarantine(event, code: error.rawValue, reason: "libmosquitto: \(error)")
            return nil
        case .notTaken(let error):
            return .notTaken(error)
        case .notConnected:
            return .notConnected
        }
    }

    /// Publishes a retained message of another concern's (a board's status that changed) while
    /// connected; in between connections, the next connection's announcements carry the news.
    /// - Returns: whether libmosquitto queued it.
    @discardableResult
    public func publishRetained(_ message: RetainedMessage) -> Bool {
        guard client.isConnected else { return false }
        return publish(message)
    }

    /// Most retained messages of a burst (`publishRetained(paced:)`) awaiting PUBACK at once.
    static let pacedInFlight = 2

    /// How a paced burst ended.
    public enum BurstOutcome: Sendable, Equatable {
        /// Every message was handed over, but those the library refused for good (counted here,
        /// and logged: a topic or a packet it will never take).
        case published(refused: Int)
        /// Stopped after `sent` messages: the connection went, the window stayed full for 2 s
        /// (PUBACKs not coming), or the caller stopped it. The rest were not handed over.
        case stopped(sent: Int)
    }

    /// Publishes many retained messages (Home Assistant's configs and states) through telemetry's
    /// share of the window, at most `pacedInFlight` awaiting PUBACK at a time: libmosquitto
    /// would queue a whole burst at once, on the wire ahead of an alarm handed over a moment
    /// later, and status messages count in telemetry's share so that the places kept for alarms
    /// stay free. A message the library refuses is skipped (it would be refused again).
    /// - Parameter stop: asked before each message; true ends the burst (a graceful shutdown).
    public func publishRetained(
        paced messages: [RetainedMessage], stop: @Sendable () -> Bool = { false }
    ) async -> BurstOutcome {
        var refused = 0
        for (index, message) in messages.enumerated() {
            // PUBACKs are recorded on libmosquitto's thread: a short poll, only while a burst lasts.
            // Bounded: a window that stays full for 2 s ends the burst; the caller tries again later.
            let deadline = ContinuousClock.now + .seconds(2)
            while !window.hasRoomForStatus(limit: Self.pacedInFlight) {
                guard client.isConnected, !Task.isCancelled, !stop(), ContinuousClock.now < deadline else {
                    return .stopped(sent: index)
                }
                try? await Task.sleep(for: .milliseconds(2))
            }
            guard client.isConnected, !stop() else { return .stopped(sent: index) }
            switch publishResult(message) {
            case .queued: continue
            case .refused(let error):
                refused += 1
                logger.warning(
                    "retained message refused by the library: skipped",
                    metadata: ["topic": "\(message.topic)", "error": "\(error)"])
            case .notTaken, .notConnected: return .stopped(sent: index)
            }
        }
        return .published(refused: refused)
    }

    @discardableResult
    private func publish(_ message: RetainedMessage) -> Bool {
        if case .queued = publishResult(message) { return true }
        return false
    }

    private func publishResult(_ message: RetainedMessage) -> MosquittoClient.PublishResult {
        let (result, resend) = window.publish(nil) {
            client.publish(topic: message.topic, payload: message.payload, retain: message.retain)
        }
        if !resend.isEmpty { Task { await outbox.putBack(resend) } }
        if case .queued = result { return result }
        logger.debug("retained message not published", metadata: ["topic": "\(message.topic)", "result": "\(result)"])
        return result
    }

    private func subscribeToCommands() {
        for filter in handler.filters {
            do { try client.subscribe(filter) } catch {
                logger.error("cannot subscribe", metadata: ["filter": "\(filter)", "error": "\(error)"])
            }
        }
    }

    /// Publishes the availability source's farewells, and waits briefly for the PUBACKs.
    private func publishFarewell() async {
        guard client.isConnected else { return }
        for message in availability.farewells() { publish(message) }
        let deadline = ContinuousClock.now + .seconds(2)
        while window.counts.inFlight > 0, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}
