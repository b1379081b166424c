import Foundation

/// The daemon's own state, written to `status.json` beside the journal so that
/// `wiregate status` can tell what a running daemon sees.
///
/// Written only when something changes (the broker comes or goes, a board does),
/// never periodically: the SD card is worn by writes.
public struct DaemonState: Codable, Sendable, Equatable {
    /// The daemon's process id; `isRunning` checks it is still alive.
    public var pid: Int32
    /// When the daemon started (wall clock, which may be wrong before the clock is synchronised).
    public var startedAt: Date
    /// Whether the broker connection was up and taking messages at the last write.
    public var brokerConnected: Bool
    /// When `brokerConnected` last changed; the start time until the first connection.
    public var brokerSince: Date
    /// Every board, configured and adopted, by name: whether it is online.
    public var boards: [String: Bool]
    /// The device node of each online board (absent in files of older versions).
    public var nodes: [String: String]?
    /// Why the broker refuses the gateway's messages (a PUBACK reason code such as "not authorised"),
    /// while it does; nil otherwise (and in files of older versions).
    public var brokerRefusing: String?
    /// When the daemon stopped cleanly; nil while it runs (or if it was killed).
    public var stoppedAt: Date?
    /// The alarm panel's state; nil without an `alarm:` section.
    public var alarm: AlarmStatus?

    /// The file's name in the state directory, beside the journal.
    public static let fileName = "status.json"

    /// Writes atomically (a temporary file renamed over the old one).
    public func write(stateDirectory: String) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let url = URL(fileURLWithPath: stateDirectory).appendingPathComponent(Self.fileName)
        try encoder.encode(self).write(to: url, options: .atomic)
    }

    /// Reads the state the daemon last wrote, for `wiregate status`.
    /// - Parameter stateDirectory: the daemon's state directory (`gateway.state_dir`).
    /// - Returns: the state as written; it may be a stopped or killed daemon's (see `isRunning`).
    /// - Throws: Foundation's file error when the file is missing or unreadable; `DecodingError` when
    ///   it is not a state this version can read.
    public static func read(stateDirectory: String) throws -> DaemonState {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(
            DaemonState.self,
            from: Data(contentsOf: URL(fileURLWithPath: stateDirectory).appendingPathComponent(fileName)))
    }

    /// Whether the process that wrote this still runs.
    public var isRunning: Bool {
        stoppedAt == nil && kill(pid, 0) == 0
    }
}

/// Keeps `status.json` up to date; a failed write is logged, never fatal.
actor StatusFile {
    private var state: DaemonState
    private let directory: String
    private let onError: @Sendable (any Error) -> Void

    init(directory: String, boards: [String], onError: @escaping @Sendable (any Error) -> Void) {
        self.directory = directory
        self.onError = onError
        let now = Date()
        state = DaemonState(
            pid: getpid(), startedAt: now, brokerConnected: false, brokerSince: now,
            boards: Dictionary(uniqueKeysWithValues: boards.map { ($0, false) }), nodes: [:], brokerRefusing: nil,
            stoppedAt: nil)
    }

    func start() { save() }

    /// The broker connection's status, as the MQTT sink holds it.
    func broker(_ status: BrokerStatus) {
        guard state.brokerConnected != status.connected || state.brokerRefusing != status.refusing else { return }
        if state.brokerConnected != status.connected { state.brokerSince = Date() }
        state.brokerConnected = status.connected
        state.brokerRefusing = status.refusing
        save()
    }

    func board(_ name: String, online: Bool, node: String?) {
        guard state.boards[name] != online || state.nodes?[name] != node else { return }
        state.boards[name] = online
        state.nodes?[name] = online ? node : nil
        save()
    }

    func alarm(_ status: AlarmStatus) {
        guard state.alarm != status else { return }
        state.alarm = status
        save()
    }

    func stopped() {
        state.brokerConnected = false
        state.boards = state.boards.mapValues { _ in false }
        state.nodes = [:]
        state.stoppedAt = Date()
        save()
    }

    private func save() {
        do { try state.write(stateDirectory: directory) } catch { onError(error) }
    }
}
