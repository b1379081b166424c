import Foundation
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
    /// - Parameters:
    ///   - anchor: the anchor.
    ///   - reason: why it was read.
    ///   - lastSeq: the last sequence number handed out at its moment; the journal's now when nil.
    public func recordAnchor(_ anchor: ClockAnchor, reason: AnchorReason, lastSeq: Int64? = nil) async {
        // In memory at once: an event handed out from now on is dated with it.
        anchorIndex.insert(anchor)
        recentAnchors = Array((recentAnchors + [anchor]).suffix(8))
        let reloadIndex = reason == .periodic && anchorIndex.count > 2 * Self.periodicAnchorsKept
        let lastSeq = lastSeq ?? sequence.last
        do {
            let row = try await database.write { db -> Int64? in
                try db.execute(sql: "INSERT OR IGNORE INTO boot (boot_id) VALUES (?)", arguments: [anchor.boot])
                guard
                    let boot = try Int64.fetchOne(
                        db, sql: "SELECT id FROM boot WHERE boot_id = ?", arguments: [anchor.boot])
                else { return nil }
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
                return boot
            }
            // This boot's row, if the card refused it as the journal opened: events written from
            // now on refer to it.
            if anchor.boot == time.boot, bootRow == nil { bootRow = row }
            // The periodic anchors deleted above leave the index too (one every 5 minutes, for ever).
            if reloadIndex {
                var reloaded = try await database.read { db in try Self.synchronisedAnchors(db) }
                // One recorded meanwhile, not committed when the table was read, stays.
                for recent in recentAnchors { reloaded.insert(recent) }
                anchorIndex = reloaded
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
    /// This boot's row (made when new), the synchronised anchors, and the start's anchor,
    /// written as the journal opens (before any event can be numbered: `lastSeq` is the last
    /// number handed out before this run).
    static func loadClock(_ database: DatabasePool, time: TimeSource, lastSeq: Int64) throws -> (
        Int64?, AnchorIndex, ClockAnchor?
    ) {
        try database.write { db in
            var row: Int64?
            var start: ClockAnchor?
            if let boot = time.boot {
                try db.execute(sql: "INSERT OR IGNORE INTO boot (boot_id) VALUES (?)", arguments: [boot])
                row = try Int64.fetchOne(db, sql: "SELECT id FROM boot WHERE boot_id = ?", arguments: [boot])
                let anchor = time.anchor(boot: boot)
                try db.execute(
                    sql: """
                        INSERT OR REPLACE INTO clock_anchor (boot, mono, wall, synced, reason, last_seq)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        row, anchor.monotonic, anchor.wall, anchor.synchronised, AnchorReason.start.rawValue, lastSeq
                    ])
                start = anchor
            }
            return (row, try Self.synchronisedAnchors(db), start)
        }
    }

    /// Every synchronised anchor of the table, indexed.
    static func synchronisedAnchors(_ db: Database) throws -> AnchorIndex {
        AnchorIndex(
            try Row.fetchAll(
                db,
                sql: """
                    SELECT b.boot_id, a.mono, a.wall FROM clock_anchor AS a JOIN boot AS b ON b.id = a.boot
                    WHERE a.synced = 1
                    """
            ).map { ClockAnchor(boot: $0[0], monotonic: $0[1], wall: $0[2], synchronised: true) })
    }

    /// Writes the start's anchor if the card refused it as the journal opened (full): the watcher
    /// calls this as it starts, and each anchor it records after tries the boot again.
    public func writeStartAnchorIfUnwritten() async {
        guard let (anchor, lastSeq) = unwrittenStart else { return }
        unwrittenStart = nil
        await recordAnchor(anchor, reason: .start, lastSeq: lastSeq)
    }

    /// Reads an anchor of this journal's clocks now and records it: read here, where events are
    /// numbered, so that the sequence number it is recorded with is the one of its moment.
    /// - Returns: the anchor; nil without a boot id.
    @discardableResult
    public func recordAnchor(reason: AnchorReason) async -> ClockAnchor? {
        guard let boot = time.boot else { return nil }
        let anchor = time.anchor(boot: boot)
        await recordAnchor(anchor, reason: reason)
        return anchor
    }

    /// Journals a correction record (a critical event on `topic`) for each stretch of this boot
    /// that its synchronised anchors can repair now and that has none yet (see
    /// `ClockRepair.corrections`), and marks them once that commit is done: a record lost with
    /// a failed commit is made again at the next synchronised anchor, one made twice (a crash
    /// between the commit and the mark) a consumer applies twice harmlessly.
    /// - Returns: the corrections journaled.
    @discardableResult
    public func journalCorrections(topic: String) async -> [TimeCorrection] {
        guard !correcting else { return [] }
        correcting = true
        defer { correcting = false }
        let corrections = await pendingCorrections()
        guard !corrections.isEmpty else { return [] }
        let fresh = corrections.filter { !journaledThisRun.contains($0.monotonic.lowerBound) }
        guard !fresh.isEmpty else { return [] }
        let events = fresh.map { Self.correctionEvent($0, topic: topic, at: time.wall()) }
        _ = take(events)
        let through = sequence.last
        // Not made again in this run, committed or not: a record still in memory (a card that
        // refuses writes) goes out as any event does.
        journaledThisRun.formUnion(fresh.map(\.monotonic.lowerBound))
        await flush()
        // Only once committed is it marked for good (a later run would otherwise not make it again).
        guard committedThrough >= through else { return fresh }
        // An open stretch (the clock unsynchronised again since) may get a longer record later.
        await markJournaled(fresh.filter(\.isClosed))
        return fresh
    }

    /// The correction record of one stretch, as the event that carries it to every sink.
    static func correctionEvent(_ correction: TimeCorrection, topic: String, at now: Date) -> Event {
        struct Record: Encodable {
            var boot: String
            // The consumers' field names, as the README documents them.
            // swift-format-ignore: AlwaysUseLowerCamelCase
            var from_mono: Int64
            // swift-format-ignore: AlwaysUseLowerCamelCase
            var to_mono: Int64
            // swift-format-ignore: AlwaysUseLowerCamelCase
            var from_seq: Int64
            // swift-format-ignore: AlwaysUseLowerCamelCase
            var to_seq: Int64
            // swift-format-ignore: AlwaysUseLowerCamelCase
            var offset_ns: Int64
        }
        let record = Record(
            boot: correction.boot, from_mono: correction.monotonic.lowerBound, to_mono: correction.monotonic.upperBound,
            from_seq: correction.seqs.lowerBound, to_seq: correction.seqs.upperBound, offset_ns: correction.offset)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let payload = (try? encoder.encode(record)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return Event(
            board: GatewayConfig.timeTopicLevel, topic: topic, subtopic: "corrections", payload: payload,
            eventClass: .critical, receivedAt: now)
    }

    /// The corrections this boot's synchronised anchors make possible and that were not journaled
    /// yet: at most one per unsynchronised stretch, ever, once `markJournaled` has been told.
    func pendingCorrections() async -> [TimeCorrection] {
        guard let boot = time.boot, let bootRow, anchorIndex.isKnown(boot) else { return [] }
        let index = anchorIndex
        let lastSeq = sequence.last
        let now = time.monotonic()
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
                let done = Set(marked.filter(\.corrected).map(\.marked.anchor.monotonic))
                return ClockRepair.corrections(of: marked.map(\.marked), index: index, lastSeq: lastSeq, now: now)
                    .filter { !done.contains($0.monotonic.lowerBound) }
            }
        } catch {
            logger.error("cannot read the clock anchors", metadata: ["error": "\(error)"])
            return []
        }
    }

    /// The correction records of `corrections` are journaled: they are not made again.
    func markJournaled(_ corrections: [TimeCorrection]) async {
        guard let bootRow, !corrections.isEmpty else { return }
        do {
            try await database.write { db in
                for correction in corrections {
                    try db.execute(
                        sql: "UPDATE clock_anchor SET corrected = 1 WHERE boot = ? AND mono = ?",
                        arguments: [bootRow, correction.monotonic.lowerBound])
                }
            }
        } catch {
            // Made again at the next synchronised anchor: a consumer applies a record twice harmlessly.
            logger.warning("cannot mark the clock corrections journaled", metadata: ["error": "\(error)"])
        }
    }
}
