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
        do {
            try await database.write { db in
                try db.execute(sql: "INSERT OR IGNORE INTO boot (boot_id) VALUES (?)", arguments: [anchor.boot])
                guard
                    let boot = try Int64.fetchOne(
                        db, sql: "SELECT id FROM boot WHERE boot_id = ?", arguments: [anchor.boot])
                else { return }
                try db.execute(
                    sql:
                        "INSERT OR REPLACE INTO clock_anchor (boot, mono, wall, synced, reason) VALUES (?, ?, ?, ?, ?)",
                    arguments: [boot, anchor.monotonic, anchor.wall, anchor.synchronised, reason.rawValue])
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
