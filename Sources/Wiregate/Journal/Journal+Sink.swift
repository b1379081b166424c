import DequeModule
import Foundation
import GRDB
import WiregateCore

/// The sinks' side of the journal: batches out (critical first), acknowledgements in,
/// reading committed rows from SQLite and the rest from memory. Each sink reads through its
/// own `JournalReader` (`reader(for:)`), from its own cursor.
extension Journal {
    /// The journal as `sink` sees it.
    /// - Parameters:
    ///   - sink: one of the sinks the journal was opened with.
    ///   - coalescingLatest: whether the destination keeps only the newest value of a `latest`
    ///     topic (a broker's retained message): a replay to it then skips a `latest` row that a
    ///     newer row of its topic supersedes. A destination that keeps the history (the backend) gets every row.
    /// - Returns: that sink's reader (a small value: any number of copies share the one cursor).
    public nonisolated func reader(for sink: String, coalescingLatest: Bool = false) -> JournalReader {
        JournalReader(journal: self, sink: sink, coalescesLatest: coalescingLatest)
    }

    /// See `OutboxReader.destinationConnected`.
    func destinationConnected(sink: String) -> Int64 {
        readers[sink]?.liveFrom = nextSeq
        return nextSeq
    }

    /// See `OutboxReader.next`, for `sink`.
    /// - Parameters:
    ///   - sink: one of the journal's sinks.
    ///   - max: the most events to return.
    ///   - classes: the classes this caller takes, in the order it takes them. A sink may have one
    ///     caller per class at once (the MQTT sink's critical and telemetry senders), never two for
    ///     the same class.
    ///   - acknowledging: events the destination confirmed since the last call.
    ///   - coalescingLatest: see `reader(for:coalescingLatest:)`.
    /// - Returns: at least one event; none once the task is cancelled or the journal is closing.
    func next(
        sink: String, max: Int, classes: [EventClass] = [.critical, .telemetry],
        acknowledging: [JournaledEvent], coalescingLatest: Bool
    ) async -> [JournaledEvent] {
        precondition(max > 0)
        precondition(readers[sink] != nil, "no sink \(sink) in this journal")
        let key = Self.callerKey(sink, classes)
        precondition(!inNext.contains(key), "two callers of next for \(key) at once")
        inNext.insert(key)
        defer { inNext.remove(key) }
        acknowledge(sink: sink, acknowledging)
        // The caller is done with its last batch: sent, or put back.
        readers[sink]!.inHand.subtract(classes)
        while !Task.isCancelled && !closing {
            // A wake-up that comes while this pass runs (an alarm appended during a telemetry read)
            // must not be lost: the pass runs again instead of waiting.
            wokenDuringPass.remove(key)
            // Critical first, always: a live alarm never waits behind a telemetry backlog.
            var events: [JournaledEvent] = []
            for eventClass in classes {
                // A refill brings at most a few hundred rows: go on until the batch is full or the class drained.
                while events.count < max, !Task.isCancelled {
                    if readers[sink]!.buffered[eventClass, default: []].isEmpty {
                        await refill(sink, eventClass, coalescingLatest: coalescingLatest)
                        if readers[sink]!.buffered[eventClass, default: []].isEmpty { break }
                    }
                    while events.count < max, var event = readers[sink]!.buffered[eventClass]?.popFirst() {
                        readers[sink]!.cursors[eventClass]!.handOut(event.seq)
                        // Dated now: an anchor recorded since it was read may repair its time.
                        event.time = time(of: event)
                        events.append(event)
                    }
                }
            }
            // A sink being stopped publishes nothing more: what it was given goes back untouched.
            if Task.isCancelled {
                putBack(sink: sink, events)
                return []
            }
            if !events.isEmpty {
                readers[sink]!.inHand.formUnion(events.map(\.event.eventClass))
                return events
            }
            if wokenDuringPass.contains(key) { continue }
            // `close()` may have begun during this pass's reads: nothing would wake this wait.
            if closing { break }
            trimIfIdle()
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in waiters[key] = continuation }
            } onCancel: {
                Task { await self.wake(sink) }
            }
        }
        return []
    }

    /// An event's time as the anchors known now tell it.
    func time(of event: JournaledEvent) -> EventTime {
        anchorIndex.time(boot: event.boot, monotonic: event.event.receivedMonotonic, synchronised: event.clockSynced)
    }

    /// `events` with their times as known now.
    func dated(_ events: [JournaledEvent]) -> [JournaledEvent] {
        events.map { event in
            var event = event
            event.time = time(of: event)
            return event
        }
    }

    func putBack(sink: String, _ events: [JournaledEvent]) {
        for event in events.reversed() {
            let eventClass = event.event.eventClass
            guard readers[sink]?.cursors[eventClass]?.isAwaiting(event.seq) == true else { continue }
            // The cursor keeps its place for it: it cannot move past an event that went back.
            readers[sink]!.cursors[eventClass]!.giveBack(event.seq)
            readers[sink]!.buffered[eventClass, default: []].prepend(event)
        }
        // A sink waiting in `next` has something to send again.
        if !events.isEmpty { wake(sink) }
    }

    func acknowledge(sink: String, _ events: [JournaledEvent]) {
        for event in events where readers[sink]?.cursors[event.event.eventClass]?.acknowledge(event.seq) == true {
            cursorsDirty = true
        }
        // A cursor on disk only spares re-sending after a crash: written seldom (the SD card).
        if cursorsDirty { perform(scheduler.cursorsMoved()) }
    }

    /// Reads the next events of a class after the sink's read position: committed rows first, then
    /// pending ones, and those only once every committed row before them has been read.
    ///
    /// A read that fails or is cancelled (GRDB throws `CancellationError` at shutdown) moves
    /// nothing: "no answer" is never taken for "nothing there", or the position would pass rows
    /// that were never sent and the cursor would follow it with the next acknowledgement.
    func refill(_ sink: String, _ eventClass: EventClass, coalescingLatest: Bool) async {
        // Each round moves the position (to a row, or to the snapshot's last commit): it ends.
        for _ in 0..<4 where !Task.isCancelled {
            let after = readers[sink]!.cursors[eventClass]!.position
            if after >= committedThrough {
                takePending(sink, eventClass, after: after)
                return
            }
            let coalesceBelow = coalescingLatest ? readers[sink]!.liveFrom : 0
            guard let (events, committed) = await readCommitted(eventClass, after: after, coalesceBelow: coalesceBelow)
            else { return }
            // The only refill of this sink and class: nothing else moved the position meanwhile.
            if let last = events.last {
                readers[sink]!.cursors[eventClass]!.read(through: last.seq)
                readers[sink]!.buffered[eventClass, default: []].append(contentsOf: events)
                return
            }
            // Nothing of this class after `after` in what the read saw, which is every commit up to
            // `committed` (read in the same transaction); later commits are read by the next round.
            readers[sink]!.cursors[eventClass]!.read(through: committed)
        }
    }

    /// Takes pending (uncommitted) events of a class after `after` into the sink's buffer.
    private func takePending(_ sink: String, _ eventClass: EventClass, after: Int64) {
        // `pending` is in seq order: start after `after` instead of scanning it all, and take
        // a bounded slice straight into the buffer (no intermediate copies on the hot path).
        var low = 0, high = pending.count
        while low < high {
            let middle = (low + high) / 2
            if pending[middle].seq <= after { low = middle + 1 } else { high = middle }
        }
        var taken = 0
        var last: Int64?
        var index = low
        // Not past the reservation known to be on the card (see `durableCeiling`): those wait for it.
        while index < pending.count && taken < Self.refillLimit && pending[index].seq <= durableCeiling {
            if pending[index].event.eventClass == eventClass {
                readers[sink]!.buffered[eventClass, default: []].append(pending[index])
                last = pending[index].seq
                taken += 1
            }
            index += 1
        }
        // Skipped rows of the other class are read by its own refill; the position is per class.
        if let last { readers[sink]!.cursors[eventClass]!.read(through: last) }
    }

    /// Most events one refill takes from memory: a bounded batch keeps each hand-out short.
    static let refillLimit = 1024

    /// Up to 256 committed events of a class after `after`, in seq order, and the highest seq the
    /// read's snapshot had committed; nil when the read failed or was cancelled.
    ///
    /// A `latest` row below `coalesceBelow` (a replay) is skipped when a newer row of its topic
    /// is journaled, so a replay sends only the newest value; the cursor moves past skipped rows
    /// with the next acknowledgement. 0 skips nothing.
    func readCommitted(_ eventClass: EventClass, after: Int64, coalesceBelow: Int64) async -> (
        events: [JournaledEvent], committed: Int64
    )? {
        do {
            return try await database.read { db in
                // The commits flush writes also move this, even for events never written (acknowledged first).
                let committed = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'event'") ?? 0
                let rows = try db.cachedStatement(
                    sql: """
                        SELECT seq, board, topic, subtopic, payload, received_at, clock_synced, latest, b.boot_id, mono
                        FROM event AS e LEFT JOIN boot AS b ON b.id = e.boot
                        WHERE class = ? AND seq > ?
                          AND (latest = 0 OR seq >= ? OR NOT EXISTS (
                              SELECT 1 FROM event AS newer WHERE newer.latest = 1 AND newer.topic = e.topic AND newer.seq > e.seq))
                        ORDER BY seq LIMIT 256
                        """)
                let events = try Row.fetchAll(rows, arguments: [eventClass.storageCode, after, coalesceBelow]).map {
                    row in
                    JournaledEvent(
                        seq: row[0],
                        event: Event(
                            board: row[1], topic: row[2], subtopic: row[3], payload: row[4],
                            eventClass: eventClass, receivedAt: Date(timeIntervalSince1970: row[5]),
                            latest: row[7], receivedMonotonic: row[9]),
                        clockSynced: row[6], boot: row[8])
                }
                return (events, committed)
            }
        } catch is CancellationError {
            return nil
        } catch {
            logger.error("journal read failed", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Whether `sink` has events of `eventClass` it has not been handed yet: in its buffer, in
    /// memory, or committed after its read position (one indexed lookup).
    func hasUnsent(sink: String, _ eventClass: EventClass) async -> Bool {
        guard let reader = readers[sink], let cursor = reader.cursors[eventClass] else { return false }
        if reader.inHand.contains(eventClass) || !(reader.buffered[eventClass]?.isEmpty ?? true) { return true }
        let after = cursor.position
        // The common answer, without a scan or a query: nothing of the class was numbered after it.
        if after >= lastSeqByClass[eventClass, default: 0] { return false }
        if pending.contains(where: { $0.seq > after && $0.event.eventClass == eventClass }) { return true }
        guard after < committedThrough else { return false }
        return
            (try? await database.read { db in
                try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM event WHERE class = ? AND seq > ?)",
                    arguments: [eventClass.storageCode, after])
            }) ?? nil ?? false
    }

    /// The key of one caller of `next`: a sink and the classes it takes.
    static func callerKey(_ sink: String, _ classes: [EventClass]) -> String {
        sink + "#" + classes.map(\.rawValue).joined(separator: ",")
    }

    /// Wakes every caller of `next` for `sink`: a waiting one goes round, one in the middle of a
    /// pass goes round once more instead of waiting.
    func wake(_ sink: String) {
        let prefix = sink + "#"
        for key in inNext where key.hasPrefix(prefix) {
            wokenDuringPass.insert(key)
            waiters.removeValue(forKey: key)?.resume()
        }
    }
}

/// The journal as one sink sees it: its own cursor over the same events.
public struct JournalReader: OutboxReader {
    let journal: Journal
    /// The sink's name in the journal's cursor table.
    public let sink: String
    /// See `Journal.reader(for:coalescingLatest:)`.
    public let coalescesLatest: Bool

    /// Acknowledges `acknowledging`, then hands out this sink's next events (see `OutboxReader.next`).
    public func next(max: Int, classes: [EventClass], acknowledging: [JournaledEvent]) async -> [JournaledEvent] {
        await journal.next(
            sink: sink, max: max, classes: classes, acknowledging: acknowledging, coalescingLatest: coalescesLatest)
    }

    /// Puts still-unacknowledged events back at the head of this sink's buffer and wakes its `next`.
    public func putBack(_ events: [JournaledEvent]) async { await journal.putBack(sink: sink, events) }

    /// Dated again with the anchors known now.
    public func dated(_ events: [JournaledEvent]) async -> [JournaledEvent] { await journal.dated(events) }

    /// Whether this sink has events of the class not handed out yet, or handed out and not come back for.
    public func hasUnsent(_ eventClass: EventClass) async -> Bool { await journal.hasUnsent(sink: sink, eventClass) }

    /// Records the events as delivered to this sink; its cursor reaches the disk with the next commit.
    public func acknowledge(_ events: [JournaledEvent]) async { await journal.acknowledge(sink: sink, events) }

    /// Writes the events to the quarantine and moves this sink past them; a failed write puts them back.
    public func quarantine(_ events: [JournaledEvent], status: Int, response: String) async {
        await journal.quarantine(sink: sink, events, status: status, response: response)
    }

    /// Marks events appended from now on as live to this sink; returns the first live seq.
    public func destinationConnected() async -> Int64 { await journal.destinationConnected(sink: sink) }

    /// Commits the whole journal's pending events and cursors, not only this sink's.
    public func flush() async { await journal.flush() }
}

extension Journal {
    /// Keeps `events` that `sink`'s destination refused for good in the quarantine table, with
    /// its answer, and moves the sink's cursor past them: the rest goes on.
    func quarantine(sink: String, _ events: [JournaledEvent], status: Int, response: String) async {
        let database = self.database
        do {
            // Its own task: a SIGTERM cancelling the sink must not cancel this write halfway (GRDB
            // throws CancellationError for a cancelled caller), or the events would be in neither table.
            try await Task {
                try await database.write { db in
                    let insert = try db.cachedStatement(
                        sql: """
                            INSERT OR REPLACE INTO quarantine (seq, sink, board, topic, payload, class, received_at, status, response, quarantined_at)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                            """)
                    let now = Date().timeIntervalSince1970
                    for item in events {
                        try insert.execute(arguments: [
                            item.seq, sink, item.event.board, item.event.topic, item.event.payload,
                            item.event.eventClass.storageCode, item.event.receivedAt.timeIntervalSince1970,
                            status, response, now
                        ])
                    }
                }
            }.value
        } catch {
            // Not in the quarantine, so not passed by the cursor either: given back, tried again a
            // second later (a card that turned read-only must not make this a busy loop).
            if !quarantineFailing {
                quarantineFailing = true
                logger.error(
                    "cannot write the quarantine: the refused events stay in the journal",
                    metadata: [
                        "error": "\(error)", "count": "\(events.count)"
                    ])
            }
            try? await Task.sleep(for: .seconds(1))
            putBack(sink: sink, events)
            return
        }
        quarantineFailing = false
        acknowledge(sink: sink, events)
    }

    /// How many events `sink`'s destination refused for good.
    public func quarantinedCount(sink: String) async -> Int {
        (try? await database.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM quarantine WHERE sink = ?", arguments: [sink]) ?? 0
        }) ?? 0
    }
}
