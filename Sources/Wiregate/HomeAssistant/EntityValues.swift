import Logging
import Synchronization
import WiregateCore

/// The last value of every board key Home Assistant is told of: the one holder of an entity's
/// state, fed by the board readers' tap and read by the publisher.
///
/// `observe` runs on a reader's task and never waits: one lock, and a rule decision cached per
/// key. Memory is bounded: at most `maxEntitiesPerBoard` keys per board are kept.
public final class EntityValues: Sendable {
    /// Most keys announced per board: a board sending ever-new keys (broken, or hostile) stops
    /// there, logged once, instead of filling Home Assistant with entities.
    public static let maxEntitiesPerBoard = 256
    /// Most keys per board remembered as not announced (a key is at most 16 levels of 128 bytes:
    /// about 2 MiB at worst). Past it a new key's rules are tried at each of its events, not
    /// remembered: memory stays bounded, and a key a rule maps is still announced.
    public static let maxUnmappedPerBoard = 1024

    /// A board and one of its keys (subtopics).
    public struct BoardKey: Hashable, Sendable, Comparable {
        /// The board's name.
        public var board: String
        /// The subtopic.
        public var key: String

        /// By board, then key.
        public static func < (lhs: BoardKey, rhs: BoardKey) -> Bool { (lhs.board, lhs.key) < (rhs.board, rhs.key) }
    }

    private struct State {
        /// Per board and key: whether a rule maps it (decided once per key).
        var mapped: [BoardKey: Bool] = [:]
        /// Keys mapped, and keys remembered as not mapped, per board (what the bounds count).
        var mappedCount: [String: Int] = [:]
        var unmappedCount: [String: Int] = [:]
        /// The last value of each mapped key.
        var values: [BoardKey: String] = [:]
        /// Values not yet published.
        var dirty: Set<BoardKey> = []
        /// Keys mapped but not yet announced.
        var fresh: [BoardKey] = []
        /// Boards past `maxEntitiesPerBoard`, each logged once.
        var overflowing: Set<String> = []
    }

    private let catalog: DiscoveryCatalog
    private let logger: Logger
    private let state = Mutex(State())
    private let continuation: AsyncStream<Void>.Continuation
    /// Yields (coalesced) when a value changed or a key was first seen.
    public let changes: AsyncStream<Void>

    /// - Parameter catalog: whose rules say which keys are kept.
    public init(catalog: DiscoveryCatalog, logger: Logger) {
        self.catalog = catalog
        self.logger = logger
        (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// One read's events (after the alarm's tap: what is journaled): keeps the last value of
    /// each mapped key. An empty value is not a state (published retained, it would erase one).
    public func observe(_ events: [Event]) {
        guard !events.isEmpty else { return }
        let undecided = state.withLock { state in
            events.map { BoardKey(board: $0.board, key: $0.subtopic) }.filter { state.mapped[$0] == nil }
        }
        // Rules are decided outside the lock (globs over every rule, once per key), in the order the
        // keys came: past the bound, the ones announced are the first seen, the same at every run
        // (a Set's order changes with each process's hash seed: a CI run caught a later key taking
        // an earlier one's place).
        var seen = Set<BoardKey>()
        let decisions = undecided.filter { seen.insert($0).inserted }.map { key in
            (key, catalog.rule(forBoard: key.board, key: key.key) != nil)
        }
        var overflowed: [String] = []
        let changed = state.withLock { state -> Bool in
            for (key, mapped) in decisions where state.mapped[key] == nil {
                if !mapped {
                    if state.unmappedCount[key.board, default: 0] < Self.maxUnmappedPerBoard {
                        state.unmappedCount[key.board, default: 0] += 1
                        state.mapped[key] = false
                    }
                    continue
                }
                guard state.mappedCount[key.board, default: 0] < Self.maxEntitiesPerBoard else {
                    if state.overflowing.insert(key.board).inserted { overflowed.append(key.board) }
                    // Remembered as not announced, within the same bound as unmapped keys.
                    if state.unmappedCount[key.board, default: 0] < Self.maxUnmappedPerBoard {
                        state.unmappedCount[key.board, default: 0] += 1
                        state.mapped[key] = false
                    }
                    continue
                }
                state.mappedCount[key.board, default: 0] += 1
                state.mapped[key] = true
                state.fresh.append(key)
            }
            var changed = false
            for event in events where !event.payload.isEmpty {
                let key = BoardKey(board: event.board, key: event.subtopic)
                guard state.mapped[key] == true else { continue }
                state.values[key] = event.payload
                state.dirty.insert(key)
                changed = true
            }
            return changed || !state.fresh.isEmpty
        }
        // Logged outside the lock: a slow log must not hold up another board's reader.
        for board in overflowed {
            logger.warning(
                "board sends more keys than Home Assistant is told of; the rest are not announced",
                metadata: ["board": "\(board)", "limit": "\(Self.maxEntitiesPerBoard)"])
        }
        if changed { continuation.yield() }
    }

    /// The keys first seen since the last call, and the values to publish: those changed since,
    /// or every one (`all`, after a connection or Home Assistant's restart), by board and key.
    /// - Returns: also the keys whose values changed since the last call (an `event` entity's
    ///   press goes only then, even in an `all`).
    public func take(all: Bool) -> (fresh: [BoardKey], values: [(key: BoardKey, value: String)], dirty: Set<BoardKey>) {
        let (fresh, values, dirty) = state.withLock { state in
            let fresh = state.fresh
            state.fresh.removeAll()
            let dirty = state.dirty
            state.dirty.removeAll()
            let keys = all ? Set(state.values.keys) : dirty
            return (fresh, keys.compactMap { key in state.values[key].map { (key, $0) } }, dirty)
        }
        // Sorted outside the lock every reader takes.
        return (fresh, values.sorted { $0.0 < $1.0 }, dirty)
    }

    /// Values whose publishing failed (the connection went): the next `take` has them again.
    public func markUnpublished(_ keys: [BoardKey]) {
        state.withLock { state in
            for key in keys where state.values[key] != nil { state.dirty.insert(key) }
        }
    }

    /// The last value of `key` on `board`; nil when none was kept.
    public func value(board: String, key: String) -> String? {
        state.withLock { $0.values[BoardKey(board: board, key: key)] }
    }
}
