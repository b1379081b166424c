/// Capped exponential backoff with jitter, for reconnecting to the broker and
/// reopening a serial port.
///
/// The n-th delay is drawn uniformly from [d/2, d] with d = min(maximum, initial · 2ⁿ),
/// so that many gateways that lost the same broker do not come back in step.
public struct Backoff: Sendable, Equatable {
    /// The first delay's ceiling; must be above zero.
    public let initial: Duration
    /// The cap on every later ceiling; at least `initial`.
    public let maximum: Duration
    /// Delays drawn since the last `reset()`: the exponent of the next ceiling.
    public private(set) var attempt: Int = 0

    /// A backoff whose first delay is at most `initial`; it traps unless 0 < `initial` <= `maximum`.
    /// - Parameters:
    ///   - initial: the first ceiling.
    ///   - maximum: the ceiling never exceeded, however many attempts fail.
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

    /// The delay before the next attempt, with jitter from the system's random generator.
    /// - Returns: a delay in [c/2, c], c being this attempt's ceiling.
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
