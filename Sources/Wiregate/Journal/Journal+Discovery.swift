import Foundation
import GRDB
import WiregateCore

extension Journal {
    /// Every config recorded as published; empty (and logged) when the table cannot be read.
    /// GRDB's asynchronous calls: the actor is free for the events meanwhile (a write of a few
    /// hundred records may wait for a commit under way, on an SD card).
    public func discoveryRecords() async -> [DiscoveryRecord] {
        do {
            return try await database.read { db in try Self.fetchDiscoveryRecords(db) }
        } catch {
            logger.error("cannot read the Home Assistant configs published", metadata: ["error": "\(error)"])
            return []
        }
    }

    /// The configs recorded in the journal in `stateDirectory`, read without writing (for
    /// `wiregate devices`); empty when there is no journal or it never recorded one.
    /// - Throws: when the journal is there but cannot be read.
    public static func discoveryRecords(stateDirectory: String) throws -> [DiscoveryRecord] {
        let path = fileName(in: stateDirectory)
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        var configuration = Configuration()
        configuration.readonly = true
        return try DatabasePool(path: path, configuration: configuration).read { db in
            try db.tableExists("discovery") ? try fetchDiscoveryRecords(db) : []
        }
    }

    private static func fetchDiscoveryRecords(_ db: Database) throws -> [DiscoveryRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM discovery ORDER BY topic").map { row in
            var record = DiscoveryRecord(
                topic: row["topic"], node: row["node"], object: row["object"], component: row["component"],
                board: row["board"], key: row["key"])
            record.identity = row["identity"]
            record.mode = row["mode"]
            return record
        }
    }

    /// Records configs as published (a record of the same topic and mode is replaced: a renamed board).
    /// A failure is logged: the next start then cannot clear what it does not know of.
    public func recordDiscovery(_ records: [DiscoveryRecord]) async {
        guard !records.isEmpty else { return }
        do {
            try await database.write { db in
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

    /// Forgets configs once their clearing message is published: by topic and mode, so that the
    /// record of the same entity in the other mode (a change of `discovery:`) stays.
    public func forgetDiscovery(_ records: [DiscoveryRecord]) async {
        guard !records.isEmpty else { return }
        do {
            try await database.write { db in
                for record in records {
                    try db.execute(
                        sql: "DELETE FROM discovery WHERE topic = ? AND mode = ?",
                        arguments: [record.topic, record.mode])
                }
            }
        } catch {
            logger.error("cannot forget the Home Assistant configs cleared", metadata: ["error": "\(error)"])
        }
    }
}
