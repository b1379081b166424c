/// Capped exponential backoff with jitter, for reconnecting to the broker and
/// reopening a serial port.
///
/// The n-th delay is drawn uniformly from [d/2, d] with d = min(maximum, initial · 2ⁿ),
/// so that many gateways that lost the same broker do not come back in step.
public struct Backoff: Sendable, Equatable {
    public let initial: Duration
    public let maximum: Duration
    public private(set) var attempt: Int = 0

    public init(initial: Duration, maximum: Duration) {
        precondition(initial > .zero && maximum >= initial, "backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay before the next attempt; each call doubles the ceiling up to `maximum`.
    public mutating func nextDelay<R: RandomNumberGenerator>(using rng: inout R) -> Duration {
        let ceiling = self.ceiling(for: attempt)
        attempt += 1
        let fraction = Double.random(in: 0.5...1.0, using: &rng)
        return ceiling * fraction
    }

    public mutating func nextDelay() -> Duration {
        var rng = SystemRandomNumberGenerator()
        return nextDelay(using: &rng)
    }

    /// Called after a success: the next failure starts from `initial` again.
    public mutating func reset() { attempt = 0 }

    func ceiling(for attempt: Int) -> Duration {
        // Stop doubling well before overflow; `maximum` caps it anyway.
        let factor = 1 << min(attempt, 30)
        let grown = initial * factor
        return grown > maximum ? maximum : grown
    }
}
