import Foundation
import GRDB
import WiregateCore

/// The journal's bounds: `max_bytes` and `max_age` on disk, `memoryLimit` in memory.
extension Journal {
    /// How often the bounds are checked: off the hot path, a few statements every few seconds.
    static let boundsInterval = Duration.seconds(5)

    /// Drops events past `max_age`, then the oldest telemetry (critical only when no telemetry is
    /// left) until the journal's used pages fit `max_bytes`; counts the drops per class.
    ///
    /// Age is judged only between two clocks known to be right: while the clock is not
    /// synchronised now, nothing expires (a Pi that booted offline may be days ahead or behind),
    /// and a row recorded with an unsynchronised clock never expires by age (its time is not
    /// known; `max_bytes` still bounds it). So no clock step can make undelivered events old.
    func enforceBounds() async {
        let (maxBytes, maxAge, quarantineCount, quarantineBytes) = bounds
        // Nil: age cannot be judged now.
        let cutoff =
            clockSynchronised()
            ? Date().addingTimeInterval(-Double(maxAge.components.seconds)).timeIntervalSince1970 : nil
        do {
            let (dropped, agedOut, quarantineDropped, used) = try await database.write {
                db -> ([EventClass: Int], [EventClass: Int], Int, Int64) in
                // The quarantine first, within its own bound; then it is left out of `max_bytes`.
                let quarantineDropped = try Self.boundQuarantine(
                    db, maxCount: quarantineCount, maxBytes: quarantineBytes)
                let quarantineSize = try Self.quarantineBytes(db)
                var dropped: [EventClass: Int] = [:]
                var agedOut: [EventClass: Int] = [:]
                for eventClass in EventClass.allCases {
                    guard let cutoff else { break }
                    try db.execute(
                        sql: "DELETE FROM event WHERE class = ? AND received_at < ? AND clock_synced = 1",
                        arguments: [eventClass.storageCode, cutoff])
                    dropped[eventClass, default: 0] += db.changesCount
                    agedOut[eventClass, default: 0] += db.changesCount
                }
                /// The events' share of the file: its used pages, less the quarantine's.
                func usedBytes() throws -> Int64 {
                    let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                    let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                    let size = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
                    return (pages - free) * size - quarantineSize
                }
                for eventClass in [EventClass.telemetry, .critical] {
                    var used = try usedBytes()
                    while used > maxBytes {
                        let rows = try Int64.fetchOne(db, sql: "SELECT count(*) FROM event") ?? 0
                        guard rows > 0 else { break }
                        // Rows to delete for the excess, from the average row size, plus a margin of 1%.
                        let perRow = max(1, used / rows)
                        let count = (used - maxBytes) / perRow + rows / 100 + 1
                        try db.execute(
                            sql: """
                                DELETE FROM event WHERE seq IN (SELECT seq FROM event WHERE class = ? ORDER BY seq LIMIT ?)
                                """, arguments: [eventClass.storageCode, count])
                        guard db.changesCount > 0 else { break }
                        dropped[eventClass, default: 0] += db.changesCount
                        used = try usedBytes()
                    }
                }
                var counts = dropped.map { ($0.key.storageCode, $0.value) }
                counts.append((Self.quarantineDropCode, quarantineDropped))
                for (code, count) in counts where count > 0 {
                    try db.execute(
                        sql: """
                            INSERT INTO dropped (class, count) VALUES (?, ?)
                            ON CONFLICT (class) DO UPDATE SET count = count + excluded.count
                            """, arguments: [code, count])
                }
                return (dropped, agedOut, quarantineDropped, try usedBytes())
            }
            metrics.used.record(used)
            for (eventClass, count) in dropped {
                let aged = agedOut[eventClass] ?? 0
                metrics.dropped(aged, eventClass, .maxAge)
                metrics.dropped(count - aged, eventClass, .maxBytes)
            }
            metrics.quarantineDropped.increment(by: quarantineDropped)
            let total = dropped.values.reduce(0, +)
            if total > 0 && !shedding {
                // Once per burst, not once per row: the next line comes when a check drops nothing again.
                logger.warning(
                    "journal bound reached: oldest events dropped",
                    metadata: [
                        "telemetry": "\(dropped[.telemetry] ?? 0)", "critical": "\(dropped[.critical] ?? 0)",
                        "max_bytes": "\(maxBytes)", "max_age": "\(maxAge)"
                    ])
            }
            shedding = total > 0
            if quarantineDropped > 0 {
                logger.warning(
                    "quarantine bound reached: its oldest rows dropped",
                    metadata: [
                        "dropped": "\(quarantineDropped)", "max_count": "\(quarantineCount)",
                        "max_bytes": "\(quarantineBytes)"
                    ])
            }
        } catch is CancellationError {
            // Shutting down: the next start checks again.
        } catch {
            logger.error("journal bounds check failed", metadata: ["error": "\(error)"])
        }
    }

    /// The `dropped` table's row for quarantined events dropped by the quarantine's bound (the
    /// classes are 0 and 1).
    static let quarantineDropCode = 2

    /// Deletes the oldest quarantined rows past `maxCount` rows or `maxBytes`. - Returns: how many.
    static func boundQuarantine(_ db: Database, maxCount: Int, maxBytes: Int64) throws -> Int {
        var dropped = 0
        let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM quarantine") ?? 0
        if count > maxCount {
            try db.execute(
                sql: """
                    DELETE FROM quarantine WHERE (sink, seq) IN (SELECT sink, seq FROM quarantine ORDER BY quarantined_at, seq LIMIT ?)
                    """, arguments: [count - maxCount])
            dropped += db.changesCount
        }
        var size = try quarantineBytes(db)
        while size > maxBytes {
            let rows = try Int64.fetchOne(db, sql: "SELECT count(*) FROM quarantine") ?? 0
            guard rows > 0 else { break }
            let excess = (size - maxBytes) / max(1, size / rows) + 1
            try db.execute(
                sql: """
                    DELETE FROM quarantine WHERE (sink, seq) IN (SELECT sink, seq FROM quarantine ORDER BY quarantined_at, seq LIMIT ?)
                    """, arguments: [excess])
            guard db.changesCount > 0 else { break }
            dropped += db.changesCount
            size = try quarantineBytes(db)
        }
        return dropped
    }

    /// The quarantine's size in the file: its pages (SQLite's `dbstat`), or where that table is
    /// not compiled in, its text plus a row's overhead.
    static func quarantineBytes(_ db: Database) throws -> Int64 {
        if let pages = try? Int64.fetchOne(
            db, sql: "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = 'quarantine'")
        {
            return pages
        }
        return try Int64.fetchOne(
            db,
            sql: """
                SELECT coalesce(sum(length(CAST(payload AS BLOB)) + length(CAST(topic AS BLOB)) + length(CAST(response AS BLOB))
                                    + length(CAST(board AS BLOB)) + 64), 0) FROM quarantine
                """) ?? 0
    }

    /// Keeps `pending` under `memoryLimit` and `memoryLimitBytes`: oldest telemetry first,
    /// critical only when nothing else is left, and then only past the count (the byte bound is
    /// telemetry's: an alarm is never dropped to keep memory low).
    func shedMemory() {
        var excess = pending.count - Self.memoryLimit, excessBytes = pendingBytes - Self.memoryLimitBytes
        guard excess > 0 || excessBytes > 0 else { return }
        var dropped: [EventClass: Int] = [:]
        for eventClass in [EventClass.telemetry, .critical]
        where excess > 0 || (excessBytes > 0 && eventClass == .telemetry) {
            pending.removeAll { item in
                guard excess > 0 || (excessBytes > 0 && eventClass == .telemetry), item.event.eventClass == eventClass
                else { return false }
                excess -= 1
                excessBytes -= item.memoryCost
                pendingBytes -= item.memoryCost
                dropped[eventClass, default: 0] += 1
                return true
            }
        }
        guard !dropped.isEmpty else { return }
        for (eventClass, count) in dropped {
            droppedInMemory[eventClass, default: 0] += count
            metrics.dropped(count, eventClass, .memory)
        }
        logger.error(
            "journal unwritable and memory full: oldest events dropped",
            metadata: [
                "telemetry": "\(dropped[.telemetry] ?? 0)", "critical": "\(dropped[.critical] ?? 0)"
            ])
    }
}

extension Journal {
    /// Events the bounds dropped since the journal was created, per class (the `dropped` table,
    /// which outlives restarts, and those dropped from memory while the card refused writes,
    /// since the start), and the quarantined events its own bound dropped.
    public func droppedCounts() async -> (byClass: [EventClass: Int], quarantine: Int) {
        let inMemory = droppedInMemory
        let stored =
            (try? await database.read { db -> ([EventClass: Int], Int) in
                var byClass = Dictionary(uniqueKeysWithValues: EventClass.allCases.map { ($0, 0) })
                var quarantine = 0
                for row in try Row.fetchAll(db, sql: "SELECT class, count FROM dropped") {
                    let code: Int = row[0]
                    if code == Self.quarantineDropCode {
                        quarantine = row[1]
                    } else {
                        byClass[EventClass(storageCode: code)] = row[1]
                    }
                }
                return (byClass, quarantine)
            }) ?? (Dictionary(uniqueKeysWithValues: EventClass.allCases.map { ($0, 0) }), 0)
        return (stored.0.merging(inMemory, uniquingKeysWith: +), stored.1)
    }
}
