import Synchronization
import WiregateCore

/// The gateway's boards by name, configured and adopted alike, each with its status: the one
/// holder of which board is online, and where. Every snapshot, count and `status.json` line is
/// derived from it.
///
/// Discovery adds adopted boards, readers report their status through `report(_:online:node:)`,
/// and any number of consumers follow the changes (`changes()`): the MQTT sink's retained
/// statuses and `status.json` today, the alarm and the metrics of later issues.
public final class BoardDirectory: Sendable {
    /// One board's status.
    public struct Status: Sendable, Equatable {
        /// The board's configured (or adopted) name.
        public var board: String
        /// Whether its reader has the port open and reads it, as the reader last reported.
        public var online: Bool
        /// The device node it is open at, while online.
        public var node: String?

        /// A status as a reader reports it; an offline board has no node.
        /// - Parameters:
        ///   - board: the board's name.
        ///   - online: whether the reader has the port open.
        ///   - node: where it is open; dropped when `online` is false.
        public init(board: String, online: Bool, node: String? = nil) {
            self.board = board
            self.online = online
            self.node = online ? node : nil
        }
    }

    private struct State {
        var readers: [String: BoardReader] = [:]
        var statuses: [String: Status] = [:]
        var followers = Followers<Status>()
    }

    private let state: Mutex<State>

    /// - Parameter boards: the configured boards' names, offline until their readers say otherwise.
    public init(boards: [String]) {
        var state = State()
        for name in boards { state.statuses[name] = Status(board: name, online: false) }
        self.state = Mutex(state)
    }

    /// The reader of the board named `name`, configured or adopted; nil when no reader was added for it.
    /// - Parameter name: the board's name, as in its topics.
    public subscript(name: String) -> BoardReader? { state.withLock { $0.readers[name] } }

    /// Every board's reader, configured and adopted, by name.
    public var all: [BoardReader] { state.withLock { $0.readers.values.sorted { $0.board.name < $1.board.name } } }

    /// Adds `reader` unless a board of its name has one. - Returns: whether it was added.
    @discardableResult
    public func add(_ reader: BoardReader) -> Bool {
        state.withLock { state in
            let name = reader.board.name
            guard state.readers[name] == nil else { return false }
            state.readers[name] = reader
            if state.statuses[name] == nil {
                let status = Status(board: name, online: false)
                state.statuses[name] = status
                state.followers.yield(status)
            }
            return true
        }
    }

    /// A reader's report: `board` is online at `node`, or offline. Followers hear of changes only.
    public func report(_ board: String, online: Bool, node: String? = nil) {
        state.withLock { state in
            let status = Status(board: board, online: online, node: node)
            guard state.statuses[board] != status else { return }
            state.statuses[board] = status
            state.followers.yield(status)
        }
    }

    /// Whether `board` is online now; false for a board the directory does not know.
    /// - Parameter board: the board's name.
    public func isOnline(_ board: String) -> Bool { state.withLock { $0.statuses[board]?.online ?? false } }

    /// Every board's status, by name.
    public func snapshot() -> [Status] {
        state.withLock { state in state.statuses.keys.sorted().map { state.statuses[$0]! } }
    }

    /// Boards online, and boards known (configured and adopted).
    public var counts: (online: Int, known: Int) {
        state.withLock { state in (state.statuses.values.filter(\.online).count, state.statuses.count) }
    }

    /// Every board's status now, then every change, in order, for one consumer (a consumer that
    /// starts after a board came online still hears of it); ends when the consumer stops reading.
    /// A consumer that falls `Followers.buffer` changes behind loses the oldest (see `Followers`).
    public func changes() -> AsyncStream<Status> {
        state.withLock { state in
            // Under the lock: no change can come between the statuses now and the first change.
            state.followers.add(startingWith: state.statuses.keys.sorted().map { state.statuses[$0]! }) {
                [weak self] id in
                self?.state.withLock { $0.followers.remove(id) }
            }
        }
    }

    /// The status of `board` now; nil for a board the directory does not know.
    public func status(of board: String) -> Status? { state.withLock { $0.statuses[board] } }
}
