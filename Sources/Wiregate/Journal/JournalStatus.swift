import Foundation
import GRDB
import WiregateCore

/// What `wiregate status` shows of the journal, read from the file while the daemon runs.
///
/// Telemetry still inside the daemon's commit window is not on disk yet, so it is not
/// counted here: at most `journal.commit_window_ms` worth.
public struct JournalStatus: Codable, Sendable, Equatable {
    /// One sink's backlog of one class, as committed to the file.
    public struct Backlog: Codable, Sendable, Equatable {
        /// Events not yet acknowledged by the sink.
        public var pending: Int
        /// When the oldest of them was read from its board (nil when none is pending).
        public var oldestReceivedAt: Date?
    }

    /// `journal.sqlite` and its write-ahead log, in bytes.
    public var bytes: Int64
    /// The last sequence number handed out.
    public var lastSeq: Int64
    /// Per sink, per class.
    public var sinks: [String: [String: Backlog]]
    /// Events the bounds (`max_bytes`, `max_age`) dropped, per class, since the journal was created.
    public var dropped: [String: Int]
    /// Events a sink's destination refused for good, per sink (the backend's 4xx answers).
    public var quarantined: [String: Int]
    /// Quarantined events its own bound (`journal.quarantine_max_count`, `_max_bytes`) dropped.
    public var quarantineDropped: Int

    /// Reads the journal in `stateDirectory` without writing to it.
    /// - Parameter sinks: sinks to report even before their cursor first moved.
    /// - Throws: when there is no journal there, or it cannot be read.
    public static func read(stateDirectory: String, sinks configured: [String] = []) throws -> JournalStatus {
        let path = (stateDirectory as NSString).appendingPathComponent("journal.sqlite")
        guard FileManager.default.fileExists(atPath: path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        let bytes = ["", "-wal"].reduce(Int64(0)) { total, suffix in
            let size =
                (try? FileManager.default.attributesOfItem(atPath: path + suffix)[.size] as? NSNumber)?.int64Value ?? 0
            return total + size
        }
        var configuration = Configuration()
        configuration.readonly = true
        let database = try DatabasePool(path: path, configuration: configuration)
        return try database.read { db in
            let lastSeq = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'event'") ?? 0
            // Every sink that ever moved its cursor, and the MQTT sink even before it did.
            let sinks = Set(try String.fetchAll(db, sql: "SELECT DISTINCT sink FROM sink_cursor")).union(
                [Journal.mqttSink] + configured)
            var backlogs: [String: [String: Backlog]] = [:]
            for sink in sinks {
                for eventClass in EventClass.allCases {
                    let cursor =
                        try Int64.fetchOne(
                            db, sql: "SELECT seq FROM sink_cursor WHERE sink = ? AND class = ?",
                            arguments: [sink, eventClass.storageCode]) ?? 0
                    let row = try Row.fetchOne(
                        db, sql: "SELECT count(*), min(received_at) FROM event WHERE class = ? AND seq > ?",
                        arguments: [eventClass.storageCode, cursor])
                    let oldest: Double? = row?[1]
                    backlogs[sink, default: [:]][eventClass.rawValue] = Backlog(
                        pending: row?[0] ?? 0,
                        oldestReceivedAt: oldest.map(Date.init(timeIntervalSince1970:)))
                }
            }
            var dropped = Dictionary(uniqueKeysWithValues: EventClass.allCases.map { ($0.rawValue, 0) })
            var quarantineDropped = 0
            if try db.tableExists("dropped") {
                for row in try Row.fetchAll(db, sql: "SELECT class, count FROM dropped") {
                    let code: Int = row[0]
                    if code == Journal.quarantineDropCode {
                        quarantineDropped = row[1]
                    } else {
                        dropped[EventClass(storageCode: code).rawValue] = row[1]
                    }
                }
            }
            var quarantined: [String: Int] = [:]
            if try db.tableExists("quarantine") {
                for row in try Row.fetchAll(db, sql: "SELECT sink, count(*) FROM quarantine GROUP BY sink") {
                    quarantined[row[0]] = row[1]
                }
            }
            return JournalStatus(
                bytes: bytes, lastSeq: lastSeq, sinks: backlogs, dropped: dropped, quarantined: quarantined,
                quarantineDropped: quarantineDropped)
        }
    }
}
