import DequeModule
import Foundation
import GRDB
import WiregateCore

/// The sink's side of the journal: batches out (critical first), acknowledgements in,
/// reading committed rows from SQLite and the rest from memory.
/// `Journal`'s own `EventOutbox` conformance is the MQTT sink's view of it; another sink
/// (the backend) reads it through `outbox(for:)`, from its own cursor.
extension Journal {
    public func next(max: Int, acknowledging: [JournaledEvent]) async -> [JournaledEvent] {
        await next(sink: Self.mqttSink, max: max, acknowledging: acknowledging)
    }

    public func putBack(_ events: [JournaledEvent]) { putBack(sink: Self.mqttSink, events) }

    public func acknowledge(_ events: [JournaledEvent]) { acknowledge(sink: Self.mqttSink, events) }

    /// The journal as `sink` sees it (one of the sinks it was opened with).
    public nonisolated func outbox(for sink: String) -> JournalSinkOutbox {
        JournalSinkOutbox(journal: self, sink: sink)
    }

    func next(sink: String, max: Int, acknowledging: [JournaledEvent]) async -> [JournaledEvent] {
        precondition(max > 0)
        precondition(readers[sink] != nil, "no sink \(sink) in this journal")
        acknowledge(sink: sink, acknowledging)
        while !Task.isCancelled {
            // Critical first, always: a live alarm never waits behind a telemetry backlog.
            var events: [JournaledEvent] = []
            for eventClass in [EventClass.critical, .telemetry] {
                // A refill brings at most a few hundred rows: go on until the batch is full or the class drained.
                while events.count < max {
                    if readers[sink]!.buffered[eventClass, default: []].isEmpty {
                        await refill(sink, eventClass)
                        if readers[sink]!.buffered[eventClass, default: []].isEmpty { break }
                    }
                    while events.count < max, let event = readers[sink]!.buffered[eventClass]?.popFirst() {
                        readers[sink]!.inFlight[eventClass, default: []].append((event.seq, false))
                        events.append(event)
                    }
                }
            }
            if !events.isEmpty { return events }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in waiters[sink] = continuation }
            } onCancel: {
                Task { await self.wake(sink) }
            }
        }
        return []
    }

    func putBack(sink: String, _ events: [JournaledEvent]) {
        for event in events.reversed() {
            let eventClass = event.event.eventClass
            readers[sink]?.inFlight[eventClass]?.removeAll { $0.seq == event.seq }
            readers[sink]?.buffered[eventClass, default: []].prepend(event)
        }
    }

    func acknowledge(sink: String, _ events: [JournaledEvent]) {
        for event in events {
            let eventClass = event.event.eventClass
            // In place: the deque is not copied out of the dictionary.
            guard let index = readers[sink]?.inFlight[eventClass]?.firstIndex(where: { $0.seq == event.seq }) else { continue }
            readers[sink]!.inFlight[eventClass]![index].acked = true
            // The cursor moves only over an unbroken run of acknowledged events.
            while let first = readers[sink]!.inFlight[eventClass]?.first, first.acked {
                readers[sink]!.cursors[eventClass] = first.seq
                readers[sink]!.inFlight[eventClass]!.removeFirst()
                cursorsDirty = true
            }
        }
        if cursorsDirty && !flushScheduled {
            // A cursor on disk only spares re-sending after a crash: write it seldom (the SD card).
            flushScheduled = true
            Task { [commitWindow] in
                try? await Task.sleep(for: Swift.max(commitWindow, Self.cursorInterval))
                await self.flush()
            }
        }
    }

    /// Reads the next events of a class after the sink's read position: committed rows first, then pending ones.
    func refill(_ sink: String, _ eventClass: EventClass) async {
        let after = readers[sink]!.position[eventClass] ?? readers[sink]!.cursors[eventClass, default: 0]
        // Caught up with what is committed: the rest is in memory, no need to ask SQLite.
        var events = after < committedThrough ? await readCommitted(eventClass, after: after, liveFrom: readers[sink]!.liveFrom) : []
        // A refill may have waited for the database; read the position again in case another one ran.
        let current = readers[sink]!.position[eventClass] ?? readers[sink]!.cursors[eventClass, default: 0]
        if events.isEmpty || events.last!.seq <= current {
            // `pending` is in seq order: start after `current` instead of scanning it all, and take
            // a bounded slice straight into the buffer (no intermediate copies on the hot path).
            var low = 0, high = pending.count
            while low < high {
                let middle = (low + high) / 2
                if pending[middle].seq <= current { low = middle + 1 } else { high = middle }
            }
            var taken = 0
            var last: Int64?
            var index = low
            while index < pending.count && taken < Self.refillLimit {
                if pending[index].event.eventClass == eventClass {
                    readers[sink]!.buffered[eventClass, default: []].append(pending[index])
                    last = pending[index].seq
                    taken += 1
                }
                index += 1
            }
            // Skipped rows of the other class are read by its own refill; the position is per class.
            if let last { readers[sink]!.position[eventClass] = last }
            return
        }
        events = events.filter { $0.seq > current }
        guard let last = events.last else { return }
        readers[sink]!.position[eventClass] = last.seq
        readers[sink]!.buffered[eventClass, default: []].append(contentsOf: events)
    }

    /// Most events one refill takes from memory: a bounded batch keeps each hand-out short.
    static let refillLimit = 1024

    /// Up to 256 committed events of a class after `after`, in seq order.
    ///
    /// A `latest` row older than `liveFrom` (a replay) is skipped when a newer row of its topic
    /// is journaled, so a replay sends only the newest value; the cursor moves past skipped rows
    /// with the next acknowledgement.
    func readCommitted(_ eventClass: EventClass, after: Int64, liveFrom: Int64) async -> [JournaledEvent] {
        do {
            return try await database.read { db in
                let rows = try db.cachedStatement(sql: """
                    SELECT seq, board, topic, subtopic, payload, received_at, clock_synced, latest FROM event AS e
                    WHERE class = ? AND seq > ?
                      AND (latest = 0 OR seq >= ? OR NOT EXISTS (
                          SELECT 1 FROM event AS newer WHERE newer.latest = 1 AND newer.topic = e.topic AND newer.seq > e.seq))
                    ORDER BY seq LIMIT 256
                    """)
                return try Row.fetchAll(rows, arguments: [eventClass.storageCode, after, liveFrom]).map { row in
                    JournaledEvent(seq: row[0], event: Event(board: row[1], topic: row[2], subtopic: row[3], payload: row[4],
                                                             eventClass: eventClass, receivedAt: Date(timeIntervalSince1970: row[5]),
                                                             latest: row[7]),
                                   clockSynced: row[6])
                }
            }
        } catch {
            logger.error("journal read failed", metadata: ["error": "\(error)"])
            return []
        }
    }

    func wake(_ sink: String) {
        waiters.removeValue(forKey: sink)?.resume()
    }
}

/// The journal as one sink (other than the MQTT sink) sees it: its own cursor, the same events.
public struct JournalSinkOutbox: EventOutbox {
    public let journal: Journal
    public let sink: String

    public func append(_ events: [Event]) async { await journal.append(events) }

    public func next(max: Int, acknowledging: [JournaledEvent]) async -> [JournaledEvent] {
        await journal.next(sink: sink, max: max, acknowledging: acknowledging)
    }

    public func putBack(_ events: [JournaledEvent]) async { await journal.putBack(sink: sink, events) }

    public func acknowledge(_ events: [JournaledEvent]) async { await journal.acknowledge(sink: sink, events) }

    public func beginLive() async -> Int64 { await journal.beginLive(sink: sink) }

    public func flush() async { await journal.flush() }
}

extension Journal {
    /// Keeps `events` that `sink`'s destination refused for good in the quarantine table, with
    /// its answer, and moves the sink's cursor past them: the rest goes on.
    func quarantine(sink: String, _ events: [JournaledEvent], status: Int, response: String) async {
        do {
            try await database.write { db in
                let insert = try db.cachedStatement(sql: """
                    INSERT OR REPLACE INTO quarantine (seq, sink, board, topic, payload, class, received_at, status, response, quarantined_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
                let now = Date().timeIntervalSince1970
                for item in events {
                    try insert.execute(arguments: [item.seq, sink, item.event.board, item.event.topic, item.event.payload,
                                                   item.event.eventClass.storageCode, item.event.receivedAt.timeIntervalSince1970,
                                                   status, response, now])
                }
            }
        } catch {
            logger.error("cannot write the quarantine; the refused events are dropped", metadata: ["error": "\(error)", "count": "\(events.count)"])
        }
        acknowledge(sink: sink, events)
    }

    /// How many events `sink`'s destination refused for good.
    public func quarantinedCount(sink: String) async -> Int {
        (try? await database.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM quarantine WHERE sink = ?", arguments: [sink]) ?? 0
        }) ?? 0
    }
}

extension JournalSinkOutbox {
    /// See `Journal.quarantine`.
    func quarantine(_ events: [JournaledEvent], status: Int, response: String) async {
        await journal.quarantine(sink: sink, events, status: status, response: response)
    }
}
