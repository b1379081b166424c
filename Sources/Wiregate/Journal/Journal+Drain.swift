import Foundation
import GRDB
import Logging

/// Taking over what a memory fallback journal (see `Journal.open`) could not send, once the disk
/// journal opens again: events the broker never had would otherwise be abandoned in `/dev/shm`.
extension Journal {
    /// Copies the events of the journal in `directory` that its MQTT sink had not acknowledged
    /// into `database`, with their own sequence numbers (which the disk journal never handed out:
    /// it goes on after the memory journal's reservation), then deletes that journal. A failure is
    /// logged and leaves the memory journal where it is, for the next start.
    static func drainMemoryJournal(in directory: String, into database: DatabasePool, logger: Logger) {
        let path = fileName(in: directory)
        guard FileManager.default.fileExists(atPath: path) else { return }
        do {
            let copied = try database.writeWithoutTransaction { db -> Int in
                // ATTACH cannot run inside a transaction; the copy itself is one.
                try db.execute(sql: "ATTACH DATABASE ? AS memory", arguments: [path])
                defer { try? db.execute(sql: "DETACH DATABASE memory") }
                var copied = 0
                // One written by a wiregate from before honest time (an upgrade while the card was
                // read-only) has neither boots nor monotonic times: its events stay unsynced.
                let hasTimes =
                    // The schema as the function's second argument: `memory.pragma_table_info('event')`
                    // reads main's table (checked with sqlite3 3.40).
                    try Row.fetchOne(db, sql: "SELECT 1 FROM pragma_table_info('event', 'memory') WHERE name = 'mono'")
                    != nil
                try db.inTransaction {
                    guard hasTimes else {
                        try db.execute(
                            sql: """
                                INSERT OR IGNORE INTO main.event (seq, board, topic, subtopic, payload, class, received_at, clock_synced, latest)
                                SELECT seq, board, topic, subtopic, payload, class, received_at, clock_synced, latest FROM memory.event AS e
                                WHERE e.seq > coalesce((SELECT seq FROM memory.sink_cursor AS c WHERE c.sink = ? AND c.class = e.class), 0)
                                """, arguments: [mqttSink])
                        copied = db.changesCount
                        return .commit
                    }
                    // Its boots by their ids: the two files number them each their own way.
                    try db.execute(sql: "INSERT OR IGNORE INTO main.boot (boot_id) SELECT boot_id FROM memory.boot")
                    // And its clock anchors: a boot that synchronised only while the card was
                    // read-only must still repair its events here (after a reboot, nothing else would).
                    try db.execute(
                        sql: """
                            INSERT OR IGNORE INTO main.clock_anchor (boot, mono, wall, synced, reason, last_seq, corrected)
                            SELECT (SELECT m.id FROM main.boot AS m JOIN memory.boot AS b ON b.boot_id = m.boot_id WHERE b.id = a.boot),
                                mono, wall, synced, reason, last_seq, corrected
                            FROM memory.clock_anchor AS a
                            """)
                    try db.execute(
                        sql: """
                            INSERT OR IGNORE INTO main.event (seq, board, topic, subtopic, payload, class, received_at, clock_synced, latest, boot, mono)
                            SELECT seq, board, topic, subtopic, payload, class, received_at, clock_synced, latest,
                                (SELECT m.id FROM main.boot AS m JOIN memory.boot AS b ON b.boot_id = m.boot_id WHERE b.id = e.boot),
                                mono
                            FROM memory.event AS e
                            WHERE e.seq > coalesce((SELECT seq FROM memory.sink_cursor AS c WHERE c.sink = ? AND c.class = e.class), 0)
                            """, arguments: [mqttSink])
                    copied = db.changesCount
                    return .commit
                }
                // The Home Assistant configs published meanwhile, so that the next start can clear
                // them: apart from the events, whose takeover must not depend on it.
                do {
                    if try Row.fetchOne(
                        db, sql: "SELECT 1 FROM memory.sqlite_master WHERE type = 'table' AND name = 'discovery'")
                        != nil
                    {
                        try db.execute(
                            sql: """
                                INSERT OR REPLACE INTO main.discovery (topic, node, object, component, board, key, identity, mode)
                                SELECT topic, node, object, component, board, key, identity, mode FROM memory.discovery
                                """)
                    }
                } catch {
                    logger.warning(
                        "cannot take over the memory journal's Home Assistant records", metadata: ["error": "\(error)"])
                }
                return copied
            }
            for suffix in ["", "-wal", "-shm"] {
                try? FileManager.default.removeItem(atPath: path + suffix)
            }
            logger.notice(
                "the memory journal's unsent events are back in the disk journal",
                metadata: [
                    "events": "\(copied)", "memory_journal": "\(directory)"
                ])
        } catch {
            logger.error(
                "cannot take over the memory journal's events; it stays for the next start",
                metadata: [
                    "memory_journal": "\(directory)", "error": "\(error)"
                ])
        }
    }
}
