/// The consumers that follow a changing fact, each through an `AsyncStream` of its own: the
/// fact's holder keeps this beside the fact, under the same lock, so that a new follower's first
/// elements (the fact now) and every later change come in order, with nothing lost in between.
///
/// A follower that falls `buffer` changes behind loses the oldest: the newest value is what
/// matters, and a stalled consumer must not hold memory without bound.
public struct Followers<Element: Sendable>: Sendable {
    private var continuations: [Int: AsyncStream<Element>.Continuation] = [:]
    private var nextID = 0
    /// Whether the holder has stopped (`removeAll()`): a follower added since ends at once.
    private var stopped = false

    /// No followers yet.
    public init() {}

    /// Changes a follower may fall behind by.
    public static var buffer: Int { 1024 }

    /// Adds a follower whose stream starts with `current`.
    /// - Parameters:
    ///   - current: the fact now, the stream's first elements.
    ///   - ended: called with the follower's id when its stream ends (the consumer cancelled, or
    ///     dropped the stream), on the thread that ended it and never inside `yield`: the holder
    ///     takes its lock there and calls `remove(_:)`.
    /// - Returns: the follower's stream.
    public mutating func add(startingWith current: [Element], ended: @escaping @Sendable (Int) -> Void) -> AsyncStream<
        Element
    > {
        let (stream, continuation) = AsyncStream.makeStream(
            of: Element.self, bufferingPolicy: .bufferingNewest(Self.buffer))
        for element in current { continuation.yield(element) }
        guard !stopped else {
            continuation.finish()
            return stream
        }
        let id = nextID
        nextID += 1
        continuations[id] = continuation
        continuation.onTermination = { _ in ended(id) }
        return stream
    }

    /// Forgets a follower whose stream has ended, from its `ended` callback; an unknown id is ignored.
    /// - Parameter id: the id `ended` was called with.
    public mutating func remove(_ id: Int) {
        continuations.removeValue(forKey: id)
    }

    /// Hands `change` to every follower; never waits.
    public func yield(_ change: Element) {
        for continuation in continuations.values { continuation.yield(change) }
    }

    /// Takes every follower out, to be ended with `finish()` once the holder has left its lock
    /// (ending a stream calls its `ended`, which takes that lock). The holder has stopped: a
    /// follower added from now on gets the fact it is given, and its stream ends.
    public mutating func removeAll() -> Followers {
        defer {
            continuations.removeAll()
            stopped = true
        }
        return self
    }

    /// Ends every follower's stream; never under the holder's lock (see `removeAll()`).
    public func finish() {
        for continuation in continuations.values { continuation.finish() }
    }
}
