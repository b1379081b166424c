import Synchronization

/// The boards by name: the configured ones from the start, adopted ones as discovery finds
/// them. Shared by discovery (which adds) and the command router (which looks up).
public final class BoardDirectory: Sendable {
    private let readers: Mutex<[String: BoardReader]>

    public init(_ readers: [BoardReader]) {
        self.readers = Mutex(Dictionary(uniqueKeysWithValues: readers.map { ($0.board.name, $0) }))
    }

    public subscript(name: String) -> BoardReader? { readers.withLock { $0[name] } }

    /// Every board, configured and adopted, by name.
    public var all: [BoardReader] { readers.withLock { $0.values.sorted { $0.board.name < $1.board.name } } }

    /// Adds `reader` unless a board of its name exists. - Returns: whether it was added.
    func add(_ reader: BoardReader) -> Bool {
        readers.withLock { readers in
            guard readers[reader.board.name] == nil else { return false }
            readers[reader.board.name] = reader
            return true
        }
    }
}
