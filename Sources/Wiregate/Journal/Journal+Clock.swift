import GRDB
import WiregateCore

/// Why a clock anchor was written (its `reason` column).
public enum AnchorReason: String, Sendable, CaseIterable {
    /// The daemon started.
    case start
    /// The kernel said the wall clock was set (timerfd's TFD_TIMER_CANCEL_ON_SET).
    case step
    /// The clock became synchronised.
    case synchronised
    /// The clock stopped being synchronised.
    case unsynchronised
    /// Every few minutes while synchronised: the nearest anchor corrects best (the crystal drifts).
    case periodic
}

extension Journal {
    /// Most periodic anchors kept, over every boot (five minutes apart: over three days of them);
    /// the others (starts, steps, synchronisations) are few and all kept.
    static let periodicAnchorsKept = 1000

    /// Records an anchor, its boot first made known. A failure is logged: an anchor lost only
    /// makes a later repair a little less exact, or (the one of a boot) impossible.
    public func recordAnchor(_ anchor: ClockAnchor, reason: AnchorReason) async {
        // In memory at once: an event handed out from now on is dated with it.
        anchorIndex.insert(anchor)
        let lastSeq = sequence.last
        do {
            try await database.write { db in
                try db.execute(sql: "INSERT OR IGNORE INTO boot (boot_id) VALUES (?)", arguments: [anchor.boot])
                guard
                    let boot = try Int64.fetchOne(
                        db, sql: "SELECT id FROM boot WHERE boot_id = ?", arguments: [anchor.boot])
                else { return }
                try db.execute(
                    sql:
                        """
                        INSERT OR REPLACE INTO clock_anchor (boot, mono, wall, synced, reason, last_seq)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [boot, anchor.monotonic, anchor.wall, anchor.synchronised, reason.rawValue, lastSeq])
                if reason == .periodic {
                    try db.execute(
                        sql: """
                            DELETE FROM clock_anchor WHERE reason = 'periodic' AND (boot, mono) NOT IN (
                                SELECT boot, mono FROM clock_anchor WHERE reason = 'periodic'
                                ORDER BY boot DESC, mono DESC LIMIT ?)
                            """, arguments: [Self.periodicAnchorsKept])
                }
            }
        } catch {
            logger.error("cannot record a clock anchor", metadata: ["reason": "\(reason)", "error": "\(error)"])
        }
    }

    /// Every anchor, oldest boot first, each with why it was written.
    public func anchors() async -> [(anchor: ClockAnchor, reason: String)] {
        do {
            return try await database.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT b.boot_id, a.mono, a.wall, a.synced, a.reason FROM clock_anchor AS a
                        JOIN boot AS b ON b.id = a.boot ORDER BY a.boot, a.mono
                        """
                ).map { row in
                    (ClockAnchor(boot: row[0], monotonic: row[1], wall: row[2], synchronised: row[3]), row[4])
                }
            }
        } catch {
            logger.error("cannot read the clock anchors", metadata: ["error": "\(error)"])
            return []
        }
    }
}

extension Journal {
    /// This boot's row (made when new) and the synchronised anchors, when the journal opens.
    static func loadClock(_ database: DatabasePool, boot: String?) throws -> (Int64?, AnchorIndex) {
        try database.write { db in
            var row: Int64?
            if let boot {
                try db.execute(sql: "INSERT OR IGNORE INTO boot (boot_id) VALUES (?)", arguments: [boot])
                row = try Int64.fetchOne(db, sql: "SELECT id FROM boot WHERE boot_id = ?", arguments: [boot])
            }
            let anchors = try Row.fetchAll(
                db,
                sql: """
                    SELECT b.boot_id, a.mono, a.wall FROM clock_anchor AS a JOIN boot AS b ON b.id = a.boot
                    WHERE a.synced = 1
                    """
            ).map { ClockAnchor(boot: $0[0], monotonic: $0[1], wall: $0[2], synchronised: true) }
            return (row, AnchorIndex(anchors))
        }
    }

    /// The corrections this boot's synchronised anchors make possible and that were not journaled
    /// yet (see `ClockRepair.corrections`): at most one per unsynchronised stretch, ever, once
    /// `markJournaled` has been told.
    public func pendingCorrections() async -> [TimeCorrection] {
        guard let boot = time.boot, let bootRow, anchorIndex.isKnown(boot) else { return [] }
        let index = anchorIndex
        let lastSeq = sequence.last
        do {
            return try await database.read { db in
                let marked = try Row.fetchAll(
                    db, sql: "SELECT mono, wall, synced, last_seq, corrected FROM clock_anchor WHERE boot = ?",
                    arguments: [bootRow]
                ).map { row in
                    (
                        marked: (
                            anchor: ClockAnchor(boot: boot, monotonic: row[0], wall: row[1], synchronised: row[2]),
                            lastSeq: row[3]
                        ) as ClockRepair.Marked, corrected: row[4] as Bool
                    )
                }
                let done = Set(marked.filter(\.corrected).map { $0.marked.lastSeq + 1 })
                return ClockRepair.corrections(of: marked.map(\.marked), index: index, lastSeq: lastSeq)
                    .filter { !done.contains($0.seqs.lowerBound) }
            }
        } catch {
            logger.error("cannot read the clock anchors", metadata: ["error": "\(error)"])
            return []
        }
    }

    /// The correction records of `corrections` are journaled: they are not made again.
    public func markJournaled(_ corrections: [TimeCorrection]) async {
        guard let bootRow, !corrections.isEmpty else { return }
        do {
            try await database.write { db in
                for correction in corrections {
                    try db.execute(
                        sql: "UPDATE clock_anchor SET corrected = 1 WHERE boot = ? AND synced = 0 AND last_seq = ?",
                        arguments: [bootRow, correction.seqs.lowerBound - 1])
                }
            }
        } catch {
            // Made again at the next synchronised anchor: a consumer applies a record twice harmlessly.
            logger.warning("cannot mark the clock corrections journaled", metadata: ["error": "\(error)"])
        }
    }
}
