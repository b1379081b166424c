/// Which boards are online, and a stream of the changes for the MQTT side to publish.
public actor BoardStatusRegistry {
    public struct Change: Sendable, Equatable {
        public var board: String
        public var online: Bool
        /// The device node it is open at, while online.
        public var node: String?
    }

    private var online: [String: Bool]
    private var nodes: [String: String] = [:]
    private let continuation: AsyncStream<Change>.Continuation
    /// Every change of a board's status, in order. Single consumer.
    public nonisolated let changes: AsyncStream<Change>

    public init(boards: [String]) {
        online = Dictionary(uniqueKeysWithValues: boards.map { ($0, false) })
        (changes, continuation) = AsyncStream.makeStream(of: Change.self)
    }

    public func set(_ board: String, online isOnline: Bool, node: String? = nil) {
        guard online[board] != isOnline else { return }
        online[board] = isOnline
        nodes[board] = isOnline ? node : nil
        continuation.yield(Change(board: board, online: isOnline, node: nodes[board]))
    }

    public func isOnline(_ board: String) -> Bool { online[board] ?? false }

    /// Every board's status, for republishing after a reconnect.
    public func snapshot() -> [Change] {
        online.keys.sorted().map { Change(board: $0, online: online[$0]!, node: nodes[$0]) }
    }
}
