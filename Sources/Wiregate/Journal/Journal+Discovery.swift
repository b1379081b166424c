import GRDB
import WiregateCore

extension Journal {
    /// Every config recorded as published; empty (and logged) when the table cannot be read.
    public func discoveryRecords() -> [DiscoveryRecord] {
        do {
            return try database.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM discovery ORDER BY topic").map { row in
                    var record = DiscoveryRecord(
                        topic: row["topic"], node: row["node"], object: row["object"], component: row["component"],
                        board: row["board"], key: row["key"])
                    record.identity = row["identity"]
                    record.mode = row["mode"]
                    return record
                }
            }
        } catch {
            logger.error("cannot read the Home Assistant configs published", metadata: ["error": "\(error)"])
            return []
        }
    }

    /// Records configs as published (a record of the same topic is replaced: a renamed board).
    /// A failure is logged: the next start then cannot clear what it does not know of.
    public func recordDiscovery(_ records: [DiscoveryRecord]) {
        guard !records.isEmpty else { return }
        do {
            try database.write { db in
                for record in records {
                    try db.execute(
                        sql: """
                            INSERT OR REPLACE INTO discovery (topic, node, object, component, board, key, identity, mode)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                            """,
                        arguments: [
                            record.topic, record.node, record.object, record.component, record.board, record.key,
                            record.identity, record.mode
                        ])
                }
            }
        } catch {
            logger.error("cannot record the Home Assistant configs published", metadata: ["error": "\(error)"])
        }
    }

    /// Forgets configs once their clearing message is published.
    public func forgetDiscovery(_ topics: [String]) {
        guard !topics.isEmpty else { return }
        do {
            try database.write { db in
                for topic in topics { try db.execute(sql: "DELETE FROM discovery WHERE topic = ?", arguments: [topic]) }
            }
        } catch {
            logger.error("cannot forget the Home Assistant configs cleared", metadata: ["error": "\(error)"])
        }
    }
}
