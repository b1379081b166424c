import CMosquitto
import Dispatch
import Foundation
import Synchronization
import WiregateCore

/// What the broker connection reports, in the order it happened.
public enum MQTTClientEvent: Sendable {
    /// CONNACK accepted, and libmosquitto has sent again what was in flight when the last
    /// connection went away: from now on `publish` takes messages, and they go out after those.
    /// `version` is the protocol spoken ("5" or "3.1.1"); `receiveMaximum` is how many QoS 1
    /// messages libmosquitto keeps on the wire at once on this connection (the broker's CONNACK
    /// receive maximum, else the client's send maximum): beyond it, messages wait in
    /// libmosquitto's queue, in order.
    case connected(version: GatewayConfig.MQTT.ProtocolVersion, receiveMaximum: Int)
    /// CONNACK refused, or the attempt failed before it; the client retries after a backoff.
    case connectFailed(reason: String)
    /// An established connection went away; the client reconnects after a backoff.
    case connectionLost(reason: String)
    /// The broker acknowledged the QoS 1 message `mid` (PUBACK). `reasonCode` ≥ 0x80 means it refused it (MQTT 5).
    /// Not sent when the client was made with an `onPublished` handler.
    case published(mid: Int32, reasonCode: Int32)
    /// A message arrived on a subscription; `retained` when the broker flags it as a retained one.
    case message(topic: String, payload: [UInt8], retained: Bool)
}

extension MQTTClientEvent {
    init(_ report: MQTTConnectionStateMachine.Report) {
        switch report {
        case .connected(let version, let receiveMaximum):
            self = .connected(version: version, receiveMaximum: receiveMaximum)
        case .connectFailed(let reason): self = .connectFailed(reason: reason)
        case .connectionLost(let reason): self = .connectionLost(reason: reason)
        }
    }
}

/// One connection to a broker through libmosquitto, kept up by its own network thread.
///
/// The seam with the C library: libmosquitto calls its callbacks on the network
/// thread this class starts (not `mosquitto_loop_start`, so that reconnecting, its
/// backoff with jitter and the CONNACK timeout are ours: the library's own
/// `loop_forever` can return on a TLS EOF instead of reconnecting). What to do when is
/// decided by the pure `MQTTConnectionStateMachine`, which the thread drives; it polls
/// the socket itself and calls `mosquitto_loop_read`/`_write`/`_misc` (see `serviceOnce`).
/// The callbacks are free functions that find their `CallbackContext` through the
/// userdata pointer and do nothing but yield an `MQTTClientEvent` into `events`.
/// Everything else happens in Swift tasks that read `events`.
///
/// `publish` and `subscribe` may be called from any thread: the handle is created
/// with `mosquitto_threaded_set(true)`, which makes libmosquitto lock its state and
/// wake the network thread when there is something to send.
///
/// `publish` takes messages only while the connection is up, from the end of the read that
/// handled the CONNACK until the connection is lost (the publish gate). libmosquitto (2.0.11,
/// handle_connack.c) calls the CONNACK callback before it sends again the messages that were in
/// flight across the loss (`message__retry_check`), and writes a message published meanwhile at
/// once: a new event would overtake older ones of its class. Between a loss and the next CONNACK a
/// publish could likewise go out, right behind the CONNECT, ahead of the messages being re-sent.
/// With the gate, whatever libmosquitto holds from the last connection goes first, and the caller
/// keeps what was not taken (`PublishResult.notConnected`).
public final class MosquittoClient: Sendable {
    /// How to reach the broker and keep the connection up; made from the config's `mqtt` section.
    public struct Options: Sendable {
        /// The broker's host name or address.
        public var host: String
        /// The broker's TCP port (the config's default: 1883, or 8883 with TLS).
        public var port: Int
        /// The MQTT keepalive, in seconds: how soon a silent connection (a cut cable) is noticed.
        public var keepalive: Int
        /// The MQTT client id; the broker drops an older session that uses the same one.
        public var clientID: String
        /// The broker username; nil: connect without credentials.
        public var username: String?
        /// The broker password, read from a file or the environment, never the command line;
        /// only sent with `username`.
        public var password: String?
        /// The protocol to try first; MQTT 5 falls back to 3.1.1 when the broker refuses it.
        public var protocolVersion: GatewayConfig.MQTT.ProtocolVersion
        /// The first reconnect delay; it doubles at each failure, with jitter, up to `reconnectMax`.
        public var reconnectMin: Duration
        /// The cap on the reconnect delay.
        public var reconnectMax: Duration
        /// How long an attempt waits for CONNACK (a hung broker accepts TCP but never answers);
        /// also the longest `shutdown()` waits for the network thread.
        public var connectTimeout: Duration
        /// The last will: topic and payload, published retained by the broker if we vanish.
        public var will: (topic: String, payload: String)?
        /// A test's seam: called on the network thread at the end of the CONNACK callback, before
        /// libmosquitto sends again what was in flight, to hold that moment open (see the publish gate).
        public var afterCONNACKForTests: (@Sendable () -> Void)?
        /// TLS settings; nil: plain TCP.
        public var tls: GatewayConfig.MQTT.TLS?
        /// Most QoS 1 messages on the wire at once unless the broker says fewer (MOSQ_OPT_SEND_MAXIMUM).
        public var sendMaximum: Int

        /// Takes the settings from the config; the will is the gateway's `offline` status.
        /// - Parameters:
        ///   - config: the loaded config; its `mqtt` section and the gateway status topic are used.
        ///   - password: the broker password, already read from its file or the environment; nil: none.
        public init(config: GatewayConfig, password: String?) {
            host = config.mqtt.host
            port = config.mqtt.port
            keepalive = config.mqtt.keepalive
            clientID = config.mqtt.clientID
            username = config.mqtt.username
            self.password = password
            protocolVersion = config.mqtt.protocolVersion
            reconnectMin = config.mqtt.reconnectMin
            reconnectMax = config.mqtt.reconnectMax
            connectTimeout = config.mqtt.connectTimeout
            will = (config.gatewayStatusTopic, "offline")
            tls = config.mqtt.tls
            sendMaximum = min(65535, max(1, config.mqtt.inflight))
        }
    }

    /// Everything the connection reports. Single consumer.
    public let events: AsyncStream<MQTTClientEvent>

    private let handle: Handle
    private let context: CallbackContext
    private let tls: BrokerTLS?
    private let options: Options
    private let stopping = Atomic<Bool>(false)
    private let wakeUp = DispatchSemaphore(value: 0)
    /// A pipe that wakes the network thread's `poll` when there is something to write (see `wakeNetworkThread`).
    private let wakePipe: (read: Int32, write: Int32)
    /// Whether the network thread is in (or about to enter) `poll`.
    private let polling = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)

    /// Creates the handle; nothing connects until `start()`.
    /// - Parameter onPublished: when given, PUBACKs go to it, on the network thread, instead of
    ///   `events`: it must only take a lock and return (the MQTT sink's window does that).
    /// - Throws: `BrokerTLSError` when a TLS file cannot be loaded; `MosquittoError` when
    ///   libmosquitto refuses the options; `SystemCallError` when the wake pipe cannot be made.
    public init(options: Options, onPublished: (@Sendable (_ mid: Int32, _ reasonCode: Int32) -> Void)? = nil) throws {
        _ = Self.libraryInitialised
        tls = try options.tls.map { settings throws(BrokerTLSError) in
            try BrokerTLS(settings: settings, host: options.host)
        }
        var fds: [Int32] = [-1, -1]
        // pipe2 is not in Swift's Glibc module (it wants _GNU_SOURCE): pipe, then the flags.
        try SystemCall.retrying("pipe", "the MQTT wake pipe") { pipe(&fds) }
        do throws(SystemCallError) {
            for fd in fds {
                try SystemCall.retrying("fcntl", "the MQTT wake pipe") { fcntl(fd, F_SETFL, O_NONBLOCK) }
                try SystemCall.retrying("fcntl", "the MQTT wake pipe") { fcntl(fd, F_SETFD, FD_CLOEXEC) }
            }
        } catch {
            fds.forEach { close($0) }
            throw error
        }
        wakePipe = (fds[0], fds[1])
        self.options = options
        let (stream, continuation) = AsyncStream.makeStream(of: MQTTClientEvent.self)
        events = stream
        context = CallbackContext(
            continuation: continuation, onPublished: onPublished, afterCONNACK: options.afterCONNACKForTests)
        // clean_session true: what must survive an outage is in our queue, not in a broker session.
        guard let mosq = mosquitto_new(options.clientID, true, Unmanaged.passUnretained(context).toOpaque()) else {
            // No handle, so no deinit: the pipe is closed here.
            close(wakePipe.read)
            close(wakePipe.write)
            throw MosquittoError(rawValue: Int32(MOSQ_ERR_NOMEM.rawValue))
        }
        handle = Handle(pointer: mosq)
        try MosquittoError.check(mosquitto_threaded_set(mosq, true))
        if let username = options.username {
            try MosquittoError.check(mosquitto_username_pw_set(mosq, username, options.password))
        }
        if let will = options.will {
            try MosquittoError.check(
                mosquitto_will_set(mosq, will.topic, Int32(will.payload.utf8.count), will.payload, 1, true))
        }
        // libmosquitto's own default is 20 on the wire: without the broker saying, use our window.
        try MosquittoError.check(mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, Int32(options.sendMaximum)))
        context.sendMaximum.store(options.sendMaximum, ordering: .relaxed)
        // An alarm is one small packet: it must not wait for the ACK of the previous one (Nagle).
        try MosquittoError.check(mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1))
        if let tls {
            // Used as it is: without this 0 (its default is 1) libmosquitto would apply its own
            // verification settings over ours, and insists on mosquitto_tls_set.
            try MosquittoError.check(mosquitto_int_option(mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0))
            try MosquittoError.check(
                mosquitto_void_option(mosq, MOSQ_OPT_SSL_CTX, UnsafeMutableRawPointer(tls.context.pointer)))
        }
        mosquitto_connect_v5_callback_set(mosq, onConnect)
        mosquitto_publish_v5_callback_set(mosq, onPublish)
        mosquitto_message_v5_callback_set(mosq, onMessage)
    }

    deinit {
        // The network thread holds a reference to self until it ends, so by now it has.
        mosquitto_destroy(handle.pointer)
        close(wakePipe.read)
        close(wakePipe.write)
        context.continuation.finish()
    }

    private static let libraryInitialised: Bool = {
        mosquitto_lib_init()
        return true
    }()

    /// Starts the network thread, which connects and stays connected until `shutdown()`.
    public func start() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        let thread = Thread { [self] in
            self.networkLoop()
            self.finished.signal()
        }
        thread.name = "wiregate-mqtt"
        thread.start()
    }

    /// Loads the TLS files of `config` as a connection would, without connecting.
    /// - Returns: what is wrong with this gateway's own certificate (expired, not yet valid), if anything.
    /// - Throws: `BrokerTLSError` naming the key, the file and the reason when a file cannot be used.
    public static func checkTLS(_ config: GatewayConfig) throws(BrokerTLSError) -> String? {
        guard let settings = config.mqtt.tls else { return nil }
        return try BrokerTLS(settings: settings, host: config.mqtt.host).clientCertificateProblem
    }

    /// What is wrong with this gateway's own TLS certificate (expired, not yet valid), if anything.
    public var clientCertificateProblem: String? { tls?.clientCertificateProblem }

    /// Whether a CONNACK was accepted, what was in flight has been sent again, and the connection
    /// has not been lost since: whether `publish` takes messages.
    public var isConnected: Bool { context.gate.withLock { $0 } }

    /// What became of a message handed to `publish`.
    public enum PublishResult: Sendable, Equatable {
        /// libmosquitto took it and gave it `mid`; it sends it now, or after the next CONNACK when
        /// the connection is down (it queues a message it has given an id, whatever it returns).
        case queued(mid: Int32)
        /// This message can never be published as it is: a topic the library refuses (malformed
        /// UTF-8, a wildcard), a payload or packet over the broker's maximum size, a property refused
        /// (see `MosquittoError.aboutTheMessage`).
        case refused(MosquittoError)
        /// Not taken, for a reason that is not the message's (out of memory, a QoS the broker does not
        /// allow): try again later.
        case notTaken(MosquittoError)
        /// Not taken: no connection, or one whose CONNACK is still being handled (see the publish
        /// gate). Nothing is wrong with the message: send it after the next `connected` event.
        case notConnected

        /// The message id of a queued message.
        /// - Throws: the error of a message that was not queued.
        public func mid() throws(MosquittoError) -> Int32 {
            switch self {
            case .queued(let mid): return mid
            case .refused(let error), .notTaken(let error): throw error
            case .notConnected: throw .noConnection
            }
        }
    }

    /// Queues a QoS 1 message, while connected (see the publish gate).
    /// - Parameter userProperties: MQTT 5 user properties; left out on a 3.1.1 connection, which has none.
    /// - Returns: the message id that the `published` event will carry, or why the message was not taken.
    public func publish(
        topic: String, payload: String, retain: Bool = false,
        userProperties: [(name: String, value: String)] = []
    ) -> PublishResult {
        // Held across the library call: the network thread closes the gate under this lock, so no
        // publish that saw it open is still on its way into libmosquitto once a loss is handled.
        context.gate.withLock { open in
            open ? queue(topic: topic, payload: payload, retain: retain, userProperties: userProperties) : .notConnected
        }
    }

    private func queue(topic: String, payload: String, retain: Bool, userProperties: [(name: String, value: String)])
        -> PublishResult
    {
        var properties: OpaquePointer?
        defer { mosquitto_property_free_all(&properties) }
        if !userProperties.isEmpty && context.version.load(ordering: .relaxed) == 5 {
            for (name, value) in userProperties {
                let code = mosquitto_property_add_string_pair(
                    &properties, Int32(MQTT_PROP_USER_PROPERTY.rawValue), name, value)
                if code != MOSQ_ERR_SUCCESS.rawValue {
                    let error = MosquittoError(rawValue: code)
                    return MosquittoError.aboutTheMessage.contains(error) ? .refused(error) : .notTaken(error)
                }
            }
        }
        // libmosquitto never gives out id 0: a 0 after the call means it checked and refused the
        // message before queueing it.
        var mid: Int32 = 0
        var payload = payload
        let code = payload.withUTF8 { bytes in
            mosquitto_publish_v5(
                handle.pointer, &mid, topic, Int32(bytes.count), bytes.baseAddress, 1, retain, properties)
        }
        let error = MosquittoError(rawValue: code)
        if error == .success || (mid != 0 && error != .noMemory) {
            wakeNetworkThread()
            return .queued(mid: mid)
        }
        // Only what is wrong with this one message; anything else (QoS or properties the broker's
        // CONNACK does not allow, memory) is not the message's fault and must not quarantine it.
        return MosquittoError.aboutTheMessage.contains(error) ? .refused(error) : .notTaken(error)
    }

    /// Makes the network thread write what was just queued.
    ///
    /// libmosquitto itself writes a byte into a socket pair for every packet queued, and
    /// `mosquitto_loop` reads one such byte per turn: a burst of n messages costs n turns of
    /// pselect, read and write. Our loop does not watch that pair; it is woken through a
    /// pipe of ours, once per burst: only when it is polling, which the atomic flag tells (the
    /// fences pair with the ones in `serviceOnce`: either it sees the queued packet
    /// before it polls, or we see it polling and wake it).
    private func wakeNetworkThread() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if polling.exchange(false, ordering: .sequentiallyConsistent) {
            var byte: UInt8 = 1
            // A full pipe (would block) has a wake-up in it already; nothing else can fail on a
            // pipe whose read end we hold.
            _ = try? SystemCall.retryingUnlessWouldBlock("write", "the MQTT wake pipe") {
                write(wakePipe.write, &byte, 1)
            }
        }
    }

    /// Subscribes at QoS 1 to messages as they are published, never to retained ones.
    ///
    /// MQTT 5 options: retained messages are not sent when subscribing (retain handling 2), and a
    /// message's retain flag reaches us as it was published (retain as published), so that a
    /// retained message can be recognised and refused. libmosquitto leaves both out on 3.1.1, where
    /// a retained message comes flagged at subscription time.
    public func subscribe(_ filter: String) throws(MosquittoError) {
        let options = Int32(MQTT_SUB_OPT_SEND_RETAIN_NEVER.rawValue | MQTT_SUB_OPT_RETAIN_AS_PUBLISHED.rawValue)
        try MosquittoError.check(mosquitto_subscribe_v5(handle.pointer, nil, filter, 1, options, nil))
        wakeNetworkThread()
    }

    /// Disconnects cleanly (the broker does not publish the will) and ends the network thread.
    /// Waits for the thread to end, at most `connectTimeout`: a thread blocked in the TCP connect of
    /// `mosquitto_connect_bind_v5` (an address that answers nothing, during an outage) cannot be
    /// woken, and a stop must stay within systemd's TimeoutStopSec. The thread holds the client,
    /// so nothing it uses is freed under it; the process is ending anyway.
    /// - Returns: whether the thread ended in time.
    @discardableResult
    public func shutdown() async -> Bool {
        guard !stopping.exchange(true, ordering: .relaxed) else { return true }
        mosquitto_disconnect_v5(handle.pointer, 0, nil)
        wakeNetworkThread()
        wakeUp.signal()
        guard started.load(ordering: .relaxed) else { return true }
        let timeout = options.connectTimeout
        return await withCheckedContinuation { (done: CheckedContinuation<Bool, Never>) in
            DispatchQueue.global().async {
                let nanoseconds =
                    timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
                done.resume(returning: self.finished.wait(timeout: .now() + .nanoseconds(Int(nanoseconds))) == .success)
            }
        }
    }

    // MARK: - The network thread

    private typealias Connection = MQTTConnectionStateMachine

    /// Drives the connection's state machine: performs its actions with libmosquitto and feeds
    /// back what came of them, one input at a time, until it says to finish.
    private func networkLoop() {
        var machine = Connection(
            version: options.protocolVersion, connectTimeout: options.connectTimeout,
            backoff: Backoff(initial: options.reconnectMin, maximum: options.reconnectMax))
        let mosq = handle.pointer
        var input = Connection.Input.start
        while true {
            // A stop comes before whatever the last action led to (an accepted CONNACK included).
            if stopping.load(ordering: .relaxed) { input = .stop }
            var next: Connection.Input?
            for action in machine.handle(input) {
                switch action {
                case .connect(let version):
                    next = connect(mosq, version: version)
                case .openGate:
                    mosquitto_log_callback_set(mosq, nil)
                    context.gate.withLock { $0 = true }
                case .closeGate:
                    context.gate.withLock { $0 = false }
                case .report(let report):
                    context.continuation.yield(MQTTClientEvent(report))
                case .disconnect:
                    mosquitto_disconnect(mosq)
                case .wait(let delay):
                    sleep(delay)
                    next = .backoffElapsed
                case .finish(let flush):
                    // Let the DISCONNECT queued by shutdown() go out before the socket closes.
                    if flush { for _ in 0..<5 where mosquitto_loop(mosq, 50, 1) == MOSQ_ERR_SUCCESS.rawValue {} }
                    return
                }
            }
            input = next ?? serviceTurn(mosq, connected: machine.state == .connected, version: machine.version)
        }
    }

    /// One attempt's options, then the connect call (TCP, and the TLS handshake, then CONNECT).
    private func connect(_ mosq: OpaquePointer, version: GatewayConfig.MQTT.ProtocolVersion) -> Connection.Input {
        mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, version == .v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311)
        // Again each time: libmosquitto overwrites it with a CONNACK's receive maximum and never
        // restores it, and the next broker (a failover) may not send the property.
        mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, Int32(options.sendMaximum))
        context.connackCode.store(-1, ordering: .relaxed)
        context.version.store(version == .v5 ? 5 : 4, ordering: .relaxed)
        if let tls {
            tls.resetFailure()
            context.lastLibraryError.withLock { $0 = nil }
            // Only while connecting: libmosquitto formats a log line for every packet when a
            // callback is set, and what explains a failed TLS attempt is logged before CONNACK.
            mosquitto_log_callback_set(mosq, onLog)
        }
        let code = mosquitto_connect_bind_v5(
            mosq, options.host, Int32(options.port), Int32(options.keepalive), nil, nil)
        guard code == MOSQ_ERR_SUCCESS.rawValue else {
            // The TLS handshake may already have begun, and failed, inside the connect call.
            return .connectCallFailed(
                reason: tlsFailure(beforeCONNACK: true)
                    ?? "cannot reach \(options.host):\(options.port): \(MosquittoError(rawValue: code))")
        }
        return .connectCallSucceeded(now: .now)
    }

    /// One turn of `mosquitto_loop` on the connection, as the state machine's input: how it ended,
    /// the CONNACK accepted, or a tick.
    private func serviceTurn(_ mosq: OpaquePointer, connected: Bool, version: GatewayConfig.MQTT.ProtocolVersion)
        -> Connection.Input
    {
        let code = serviceOnce(mosq)
        // Taken once the read that handled an accepted CONNACK has returned: libmosquitto has sent
        // again what was in flight (after our callback), so new messages may follow it now.
        let accepted = context.accepted.withLock { accepted in
            defer { accepted = nil }; return accepted
        }
        guard code == MOSQ_ERR_SUCCESS.rawValue else {
            let connack = context.connackCode.load(ordering: .relaxed)
            if connack == Int32(CONNACK_REFUSED_PROTOCOL_VERSION.rawValue)
                || connack == Int32(MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION.rawValue)
            {
                return .ended(.protocolRefused)
            }
            if connack > 0 {
                return .ended(
                    .failed(
                        reason: "the broker refused the connection: \(Self.connackReason(connack, version: version))"))
            }
            return .ended(.failed(reason: tlsFailure(beforeCONNACK: !connected) ?? "\(MosquittoError(rawValue: code))"))
        }
        if let accepted { return .connackAccepted(version: accepted.version, receiveMaximum: accepted.receiveMaximum) }
        return .tick(now: .now)
    }

    /// One turn of the network loop: waits up to 200 ms for the socket or a wake-up, then reads,
    /// writes, and checks the keepalive. What `mosquitto_loop` does, minus its one turn per
    /// queued packet (see `wakeNetworkThread`).
    private func serviceOnce(_ mosq: OpaquePointer) -> Int32 {
        let socket = mosquitto_socket(mosq)
        guard socket >= 0 else { return Int32(MOSQ_ERR_NO_CONN.rawValue) }
        polling.store(true, ordering: .sequentiallyConsistent)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let wantWrite = mosquitto_want_write(mosq)
        var fds = [
            pollfd(fd: socket, events: Int16(POLLIN) | (wantWrite ? Int16(POLLOUT) : 0), revents: 0),
            pollfd(fd: wakePipe.read, events: Int16(POLLIN), revents: 0)
        ]
        // An interrupted wait is waited again (up to another 200 ms: the keepalive's granularity is seconds).
        let waited = Result { () throws(SystemCallError) in
            try SystemCall.retrying("poll", "the MQTT socket") { poll(&fds, 2, 200) }
        }
        polling.store(false, ordering: .relaxed)
        if case .failure(let error) = waited {
            // errno, for the connection's report: the code alone would say only "a system call failed".
            errno = error.code
            return Int32(MOSQ_ERR_ERRNO.rawValue)
        }
        if fds[1].revents != 0 {
            var drain = (UInt64(0), UInt64(0))
            _ = try? SystemCall.retryingUnlessWouldBlock("read", "the MQTT wake pipe") {
                read(wakePipe.read, &drain, 16)
            }
        }
        var code = Int32(MOSQ_ERR_SUCCESS.rawValue)
        if fds[0].revents != 0 {
            // Also on POLLOUT alone: during a TLS handshake, the read call is what continues it.
            code = mosquitto_loop_read(mosq, 1)
            acknowledgeQuickly(mosq)
        }
        if code == MOSQ_ERR_SUCCESS.rawValue && mosquitto_want_write(mosq) {
            code = mosquitto_loop_write(mosq, 1)
        }
        if code == MOSQ_ERR_SUCCESS.rawValue {
            code = mosquitto_loop_misc(mosq)
        }
        return code
    }

    /// Turns the kernel's delayed ACK off again (it comes back by itself). A broker without
    /// `set_tcp_nodelay` (Mosquitto's default) holds each PUBACK back (Nagle) until its previous
    /// segment is ACKed; with our ACK delayed and nothing of ours to send meanwhile, every window
    /// then stalled for milliseconds (6,000 instead of 38,000 events/s on loopback).
    private func acknowledgeQuickly(_ mosq: OpaquePointer) {
        var on: Int32 = 1
        let socket = mosquitto_socket(mosq)
        if socket >= 0 {
            _ = setsockopt(socket, Int32(IPPROTO_TCP), TCP_QUICKACK, &on, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    /// Why the TLS side of a failed attempt failed, when it did (see `BrokerTLS.describeFailure`).
    private func tlsFailure(beforeCONNACK: Bool) -> String? {
        tls?.describeFailure(libraryError: context.lastLibraryError.withLock { $0 }, beforeCONNACK: beforeCONNACK)
    }

    static func connackReason(_ code: Int32, version: GatewayConfig.MQTT.ProtocolVersion) -> String {
        let text =
            version == .v5
            ? String(cString: mosquitto_reason_string(code)) : String(cString: mosquitto_connack_string(code))
        // Mosquitto answers "not authorised" for a wrong password as for an unknown user.
        let credentials: Set<Int32> = version == .v5 ? [0x86, 0x87] : [4, 5]
        return credentials.contains(code)
            ? "\(text) (check mqtt.username, and the password in mqtt.password_file or \(GatewayConfig.passwordEnvironmentVariable))"
            : text
    }

    /// Sleeps on the network thread, waking early for `shutdown()`.
    private func sleep(_ duration: Duration) {
        let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
        _ = wakeUp.wait(timeout: .now() + .nanoseconds(Int(nanoseconds)))
    }
}

/// The `mosquitto *` handle. Its one owner is `MosquittoClient`, which destroys it in `deinit`.
///
/// `@unchecked Sendable`: libmosquitto locks its own state for the calls we make
/// from other threads (publish, subscribe, disconnect) once `mosquitto_threaded_set` is on.
struct Handle: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// What the C callbacks reach through their userdata pointer.
final class CallbackContext: Sendable {
    let continuation: AsyncStream<MQTTClientEvent>.Continuation
    /// The publish gate: whether `publish` hands messages to libmosquitto (see `MosquittoClient`).
    /// Opened and closed by the network thread only, outside any libmosquitto call.
    let gate = Mutex<Bool>(false)
    /// What the CONNACK callback learnt of an accepted connection, until the network thread,
    /// once the read that handled it has returned, opens the gate and reports it.
    let accepted = Mutex<(version: GatewayConfig.MQTT.ProtocolVersion, receiveMaximum: Int)?>(nil)
    /// The CONNACK code of the current attempt, -1 before one arrived.
    let connackCode = Atomic<Int32>(-1)
    /// 5 or 4 (3.1.1), the protocol of the current connection.
    let version = Atomic<Int32>(5)
    let onPublished: (@Sendable (Int32, Int32) -> Void)?
    /// The first error libmosquitto logged during the current attempt, with TLS (OpenSSL's reason).
    let lastLibraryError = Mutex<String?>(nil)
    /// MOSQ_OPT_SEND_MAXIMUM, set once before the network thread starts.
    let sendMaximum = Atomic<Int>(20)
    let afterCONNACK: (@Sendable () -> Void)?

    init(
        continuation: AsyncStream<MQTTClientEvent>.Continuation, onPublished: (@Sendable (Int32, Int32) -> Void)?,
        afterCONNACK: (@Sendable () -> Void)?
    ) {
        self.continuation = continuation
        self.onPublished = onPublished
        self.afterCONNACK = afterCONNACK
    }

    static func from(_ userdata: UnsafeMutableRawPointer?) -> CallbackContext {
        Unmanaged<CallbackContext>.fromOpaque(userdata!).takeUnretainedValue()
    }
}

// MARK: - libmosquitto callbacks
//
// Free functions, called on the network thread from inside `mosquitto_loop`. They
// must not block and must not touch anything but their context.

private func onConnect(
    _ mosq: OpaquePointer?, _ userdata: UnsafeMutableRawPointer?, _ code: Int32, _ flags: Int32,
    _ properties: OpaquePointer?
) {
    let context = CallbackContext.from(userdata)
    context.connackCode.store(code, ordering: .relaxed)
    guard code == 0 else { return }
    defer { context.afterCONNACK?() }
    let version: GatewayConfig.MQTT.ProtocolVersion = context.version.load(ordering: .relaxed) == 5 ? .v5 : .v311
    // What libmosquitto itself does with the property (handle_connack): it replaces the send maximum.
    var receiveMaximum = UInt16(clamping: context.sendMaximum.load(ordering: .relaxed))
    if version == .v5 {
        _ = mosquitto_property_read_int16(properties, Int32(MQTT_PROP_RECEIVE_MAXIMUM.rawValue), &receiveMaximum, false)
    }
    // Reported by the network thread once libmosquitto has re-sent what was in flight (the gate).
    context.accepted.withLock { $0 = (version, Int(receiveMaximum)) }
}

private func onPublish(
    _ mosq: OpaquePointer?, _ userdata: UnsafeMutableRawPointer?, _ mid: Int32, _ reasonCode: Int32,
    _ properties: OpaquePointer?
) {
    let context = CallbackContext.from(userdata)
    if let onPublished = context.onPublished {
        onPublished(mid, reasonCode)
    } else {
        context.continuation.yield(.published(mid: mid, reasonCode: reasonCode))
    }
}

private func onLog(
    _ mosq: OpaquePointer?, _ userdata: UnsafeMutableRawPointer?, _ level: Int32, _ message: UnsafePointer<CChar>?
) {
    guard level == MOSQ_LOG_ERR, let message else { return }
    let text = String(cString: message)
    // The first error of the attempt is the cause; what follows is libmosquitto closing up.
    CallbackContext.from(userdata).lastLibraryError.withLock { if $0 == nil { $0 = text } }
}

private func onMessage(
    _ mosq: OpaquePointer?, _ userdata: UnsafeMutableRawPointer?, _ message: UnsafePointer<mosquitto_message>?,
    _ properties: OpaquePointer?
) {
    guard let message = message?.pointee, let topic = message.topic else { return }
    let payload: [UInt8] =
        message.payloadlen > 0 && message.payload != nil
        ? Array(UnsafeRawBufferPointer(start: message.payload, count: Int(message.payloadlen)))
        : []
    CallbackContext.from(userdata).continuation.yield(
        .message(topic: String(cString: topic), payload: payload, retained: message.retain))
}
