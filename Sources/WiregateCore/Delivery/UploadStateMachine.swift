/// The backend upload's decisions, without I/O: how a batch is shaped, what each answer does
/// to it (acknowledge, cut in halves, quarantine, back off), whether bodies are gzipped, and the
/// pace of a backlog. The backend sink performs the actions with AsyncHTTPClient and the journal.
///
/// A batch is sent as it is until it is stored or refused: the same events, so the backend's
/// idempotency absorbs a repeat. 413 halves it (and lowers the limit for the batches after it);
/// a refusal (400, 409, 422) halves it until the bad event is alone, which alone is quarantined,
/// its neighbours still arriving, in order. Trouble (network, 408, 429, 5xx) and a setup that is
/// wrong (a redirect, 401, 403, 404, a login page) back off, capped, with jitter, and are said
/// once per kind. `Item` is the sink's event type; only its count and order matter here.
public struct UploadStateMachine<Item: Sendable>: Sendable {
    /// What the backend sink must do with the journal, the clock and its log, in the order given.
    public enum Action: Sendable {
        case acknowledge([Item])
        case quarantine([Item], status: Int, response: String)
        /// Wait this long before the next attempt.
        case wait(Duration)
        /// The backend was reached, for the first time or (`again`) after trouble.
        case reachable(again: Bool)
        /// A new kind of trouble, to be said once (`misconfigured`: the setup, not the network).
        case unreachable(reason: String, misconfigured: Bool)
        /// The backend's answers say whether it takes gzip bodies; from now on, accordingly.
        case gzip(accepted: Bool)
        /// The backend's size limit: batches of at most this many from now on.
        case smallerBatches(Int)
    }

    /// How a batch read from the journal is sent.
    public enum Shape: Sendable, Equatable {
        /// Send its first `count` events; put the rest back.
        case send(count: Int)
        /// A trickle of live telemetry: put it back, wait `linger`, read again.
        case linger
    }

    /// Most events per request: the configured batch size until a 413 says less.
    public private(set) var batchLimit: Int
    /// Whether bodies go gzipped (the backend said it takes them, and the config allows it).
    public private(set) var compress = false
    private let compressionAllowed: Bool
    private let maxRate: Int?
    private var backoff: Backoff
    /// The batch, or the parts it was cut into, in seq order.
    private var parts: [[Item]] = []
    private var lastProblem: String?
    private var everStored = false
    private var nextSend: ContinuousClock.Instant

    /// - Parameters:
    ///   - compress: whether gzip bodies may be sent (`backend.compress`).
    ///   - maxRate: events a second a backlog drains at, at most; nil: as fast as the backend takes them.
    ///   - start: now, the pacing's start.
    public init(batchSize: Int, compress: Bool, retryMax: Duration, maxRate: Int?, start: ContinuousClock.Instant) {
        batchLimit = batchSize
        compressionAllowed = compress
        self.maxRate = maxRate
        backoff = Backoff(initial: .seconds(1), maximum: retryMax)
        nextSend = start
    }

    /// Critical events go in a batch of their own, first; live telemetry is gathered for a
    /// while rather than sent one request per event.
    /// - Parameters:
    ///   - classes: the classes of a batch read from the journal, in order (not empty).
    ///   - lingered: whether this batch was read after lingering (it is then sent as it is).
    public func shape(_ classes: [EventClass], lingered: Bool = false) -> Shape {
        guard let first = classes.first else { return .send(count: 0) }
        let run = classes.firstIndex { $0 != first } ?? classes.count
        if first == .telemetry && classes.count < batchLimit && !lingered { return .linger }
        return .send(count: run)
    }

    /// The part to send now; nil once the batch is done with.
    public var part: [Item]? { parts.first }

    /// Starts on a shaped batch.
    public mutating func begin(_ batch: [Item]) {
        parts = batch.isEmpty ? [] : [batch]
    }

    /// The answer to the current part.
    /// - Parameters:
    ///   - acceptsGzip: whether the answer says the backend takes gzip bodies (nil: it says nothing).
    ///   - sentGzipped: whether the part went gzipped.
    /// - Returns: what to do, in order; after it, `part` is what to send next.
    public mutating func answered<R: RandomNumberGenerator>(
        _ verdict: UploadVerdict, acceptsGzip: Bool?, sentGzipped: Bool,
        using rng: inout R
    ) -> [Action] {
        var actions: [Action] = []
        if let acceptsGzip, acceptsGzip != compress, compressionAllowed {
            // RFC 7694: a 415 to a gzipped body says the backend does not take them: the same part, plain.
            compress = acceptsGzip
            actions.append(.gzip(accepted: acceptsGzip))
            if !acceptsGzip && sentGzipped { return actions }
        }
        guard let part = parts.first else { return actions }
        switch verdict {
        case .stored:
            parts.removeFirst()
            actions.append(.acknowledge(part))
            if lastProblem != nil || !everStored { actions.append(.reachable(again: lastProblem != nil)) }
            lastProblem = nil
            everStored = true
            backoff.reset()
        case .tooLarge where part.count > 1, .refused where part.count > 1:
            // Halves, first half first: order holds, and a bad event ends up alone.
            let half = part.count / 2
            parts.replaceSubrange(0..<1, with: [Array(part[..<half]), Array(part[half...])])
            if case .tooLarge = verdict {
                batchLimit = max(1, min(batchLimit, half))
                actions.append(.smallerBatches(batchLimit))
            }
        case .tooLarge:
            parts.removeFirst()
            actions.append(
                .quarantine(part, status: 413, response: "the backend's request size limit is below one event"))
        case .refused(let status, let response):
            parts.removeFirst()
            actions.append(.quarantine(part, status: status, response: response))
        case .retry(let reason, let after):
            if reason != lastProblem { actions.append(.unreachable(reason: reason, misconfigured: false)) }
            lastProblem = reason
            actions.append(.wait(max(backoff.nextDelay(using: &rng), after ?? .zero)))
        case .misconfigured(let reason):
            if reason != lastProblem { actions.append(.unreachable(reason: reason, misconfigured: true)) }
            lastProblem = reason
            actions.append(.wait(backoff.nextDelay(using: &rng)))
        }
        return actions
    }

    /// Without a generator of the caller's: the system's.
    public mutating func answered(_ verdict: UploadVerdict, acceptsGzip: Bool?, sentGzipped: Bool) -> [Action] {
        var rng = SystemRandomNumberGenerator()
        return answered(verdict, acceptsGzip: acceptsGzip, sentGzipped: sentGzipped, using: &rng)
    }

    /// A batch of `count` events is done with (stored or quarantined).
    /// - Returns: when the next may go (`max_rate`), nil when at once.
    public mutating func batchDone(count: Int, now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        guard let maxRate else { return nil }
        // A quiet spell earns at most a second's worth of credit.
        nextSend = max(nextSend, now - .seconds(1)) + .seconds(Double(count) / Double(maxRate))
        return nextSend
    }
}
