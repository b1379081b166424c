/// The life of the gateway's broker connection, without I/O: what happened goes in, what to do
/// comes out. The MQTT client's network thread performs the actions with libmosquitto and feeds
/// back what came of them; this is the one holder of "connected" (the client's publish gate
/// opens and closes on its actions, and the sink hears of it through the reports).
///
/// One attempt: `connect` (the client sets the protocol version and sends CONNECT), then the
/// CONNACK is awaited for at most `connectTimeout`. Accepted: the gate opens and `connected` is
/// reported (the sink then subscribes and announces availability). A 3.1.1-only broker refusing
/// MQTT 5 is tried again at once in 3.1.1, for good. Any other end is a failure (never
/// connected) or a loss (it was), reported as such and followed by a backoff with jitter that
/// starts over after a connection that was up.
public struct MQTTConnectionStateMachine: Sendable {
    /// The MQTT protocol version of an attempt, as the config names it.
    public typealias Version = GatewayConfig.MQTT.ProtocolVersion
    /// A point in monotonic time, for the CONNACK deadline: a wall-clock step cannot move it.
    public typealias Instant = ContinuousClock.Instant

    /// Where the connection stands.
    public enum State: Sendable, Equatable {
        /// Not started.
        case idle
        /// The connect call is under way (the driver feeds how it went).
        case connecting
        /// CONNECT sent; the CONNACK is due by `deadline`.
        case awaitingCONNACK(deadline: Instant)
        /// CONNACK accepted: the gate is open.
        case connected
        /// Between attempts.
        case backingOff
        /// After `stop`: nothing more happens.
        case stopped
    }

    /// What happened, fed by the client's network thread (and `start`/`stop` by its owner).
    public enum Input: Sendable, Equatable {
        case start
        /// The connect call itself failed (no route, refused, a TLS handshake that failed inside it).
        case connectCallFailed(reason: String)
        /// CONNECT is on its way; `now` starts the CONNACK deadline.
        case connectCallSucceeded(now: Instant)
        /// The read that handled an accepted CONNACK has returned (libmosquitto has re-sent what
        /// was in flight): the connection takes new messages from now on.
        case connackAccepted(version: Version, receiveMaximum: Int)
        /// The connection's loop ended with an error.
        case ended(Ending)
        /// A turn of the loop went by without an end: checks the CONNACK deadline.
        case tick(now: Instant)
        /// The backoff's wait is over.
        case backoffElapsed
        /// A clean stop was asked for.
        case stop
    }

    /// Why the connection's loop ended.
    public enum Ending: Sendable, Equatable {
        /// The broker refused the protocol version at CONNACK.
        case protocolRefused
        /// Anything else, in words for the log: a CONNACK refusal, a TLS failure, a socket error.
        case failed(reason: String)
    }

    /// What the connection's owner hears, in order.
    public enum Report: Sendable, Equatable {
        case connected(version: Version, receiveMaximum: Int)
        case connectFailed(reason: String)
        case connectionLost(reason: String)
    }

    /// What the client must do, in the order given.
    public enum Action: Sendable, Equatable {
        /// Set the protocol version and the per-attempt options, and call connect.
        case connect(Version)
        /// Let `publish` take messages.
        case openGate
        /// Stop `publish` taking messages (before anything else of a loss or a stop is done).
        case closeGate
        case report(Report)
        /// Drop the socket of an attempt that will not go on.
        case disconnect
        /// Wait this long, then feed `backoffElapsed` (woken early by a stop).
        case wait(Duration)
        /// Let the DISCONNECT queued by the stop go out, when there is a connection, and end.
        case finish(flush: Bool)
    }

    /// Where the connection stands; `.idle` until `start`.
    public private(set) var state: State = .idle
    /// The protocol of the next attempt: the configured one until a broker refuses MQTT 5.
    public private(set) var version: Version
    private var backoff: Backoff
    private let connectTimeout: Duration
    /// Whether this attempt's CONNACK was accepted (a loss, not a failure, if it ends).
    private var wasConnected = false

    /// An idle connection.
    /// - Parameters:
    ///   - version: the configured protocol (`mqtt.protocol`), the first attempt's.
    ///   - connectTimeout: how long a CONNACK may take before the attempt fails (`mqtt.connect_timeout`).
    ///   - backoff: the waits between attempts, reset after a connection that was up.
    public init(version: Version, connectTimeout: Duration, backoff: Backoff) {
        self.version = version
        self.connectTimeout = connectTimeout
        self.backoff = backoff
    }

    /// Takes `input`; returns the actions to perform, in order. Backoff delays are drawn from `rng`.
    public mutating func handle<R: RandomNumberGenerator>(_ input: Input, using rng: inout R) -> [Action] {
        switch (state, input) {
        case (.stopped, _):
            return []
        case (_, .stop):
            // A socket may be open from the connect call on: the DISCONNECT goes out on it.
            let flush = state == .connected || state == .connecting || isAwaitingCONNACK
            state = .stopped
            return flush ? [.closeGate, .finish(flush: true)] : [.finish(flush: false)]
        case (.idle, .start), (.backingOff, .backoffElapsed):
            wasConnected = false
            state = .connecting
            return [.connect(version)]
        case (.connecting, .connectCallFailed(let reason)):
            state = .backingOff
            return [.report(.connectFailed(reason: reason)), wait(using: &rng)]
        case (.connecting, .connectCallSucceeded(let now)):
            state = .awaitingCONNACK(deadline: now + connectTimeout)
            return []
        case (.awaitingCONNACK, .connackAccepted(let version, let receiveMaximum)):
            state = .connected
            wasConnected = true
            return [.openGate, .report(.connected(version: version, receiveMaximum: receiveMaximum))]
        case (.awaitingCONNACK(let deadline), .tick(let now)) where now > deadline:
            state = .backingOff
            return [
                .disconnect,
                .report(.connectFailed(reason: "no CONNACK within \(connectTimeout) (is the broker hung?)")),
                wait(using: &rng)
            ]
        case (.awaitingCONNACK, .ended(.protocolRefused)) where version == .v5:
            version = .v311
            state = .connecting
            return [
                .closeGate, .disconnect,
                .report(.connectFailed(reason: "the broker refused MQTT 5; falling back to 3.1.1")),
                .connect(.v311)
            ]
        case (.awaitingCONNACK, .ended(let ending)), (.connected, .ended(let ending)):
            state = .backingOff
            let reason: String
            switch ending {
            case .protocolRefused: reason = "the broker refused the protocol version"
            case .failed(let text): reason = text
            }
            if wasConnected { backoff.reset() }
            let report: Report = wasConnected ? .connectionLost(reason: reason) : .connectFailed(reason: reason)
            return [.closeGate, .disconnect, .report(report), wait(using: &rng)]
        default:
            // Nothing else changes anything: a tick while connected or waiting, an input that
            // belongs to another state (the driver feeds each state only its own).
            return []
        }
    }

    /// Without a generator of the caller's: the system's.
    public mutating func handle(_ input: Input) -> [Action] {
        var rng = SystemRandomNumberGenerator()
        return handle(input, using: &rng)
    }

    private var isAwaitingCONNACK: Bool {
        if case .awaitingCONNACK = state { return true }
        return false
    }

    private mutating func wait<R: RandomNumberGenerator>(using rng: inout R) -> Action {
        .wait(backoff.nextDelay(using: &rng))
    }
}
