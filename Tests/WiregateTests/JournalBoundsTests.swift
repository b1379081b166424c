import Foundation
import Logging
import Synchronization
import Testing
import WiregateCore
import WiregateTestKit

@testable import Wiregate

/// `max_bytes` and `max_age`: telemetry goes before critical, and every drop is counted.
@Suite(.serialized) struct JournalBoundsTests {
    func event(_ n: Int, _ eventClass: EventClass, at date: Date = Date()) -> Event {
        Event(
            board: "b", topic: "wiregate/gw/b/\(eventClass == .critical ? "door" : "temperature")",
            subtopic: eventClass == .critical ? "door" : "temperature",
            payload: "\(n) " + String(repeating: "x", count: 100), eventClass: eventClass, receivedAt: date)
    }

    @Test func sizeBoundDropsTelemetryBeforeCritical() async throws {
        let state = try makeTemporaryDirectory("bounds")
        let journal = try Journal(
            directory: state, settings: .init(commitWindow: .zero, sync: .normal, maxBytes: 64 << 10),
            logger: Logger(label: "test"))
        for n in 0..<3000 {
            await journal.append([event(n, n % 100 == 0 ? .critical : .telemetry)])
        }
        await journal.enforceBounds()
        let pending = await journal.pendingCount()
        #expect(pending[.critical] == 30)  // every critical event kept
        #expect(pending[.telemetry]! < 2970 && pending[.telemetry]! > 0)
        let status = try JournalStatus.read(stateDirectory: state)
        #expect(status.dropped["critical"] == 0)
        #expect(status.dropped["telemetry"] == 2970 - pending[.telemetry]!)
        // What is left is the newest telemetry: the oldest went first.
        var telemetry: [Int] = []
        while telemetry.count < pending[.telemetry]! {
            for next in await journal.mqtt.next(max: 100) where next.event.eventClass == .telemetry {
                telemetry.append(Int(next.event.payload.split(separator: " ")[0])!)
            }
        }
        #expect(telemetry == telemetry.sorted())
        #expect(telemetry.last == 2999)
    }

    @Test func criticalGoesOnlyWhenNoTelemetryIsLeft() async throws {
        let state = try makeTemporaryDirectory("bounds")
        let journal = try Journal(
            directory: state, settings: .init(commitWindow: .zero, sync: .normal, maxBytes: 64 << 10),
            logger: Logger(label: "test"))
        for n in 0..<2000 { await journal.append([event(n, n < 10 ? .telemetry : .critical)]) }
        await journal.enforceBounds()
        let status = try JournalStatus.read(stateDirectory: state)
        #expect(status.dropped["telemetry"] == 10)
        #expect(status.dropped["critical"]! > 0)
        #expect(await journal.pendingCount()[.critical] == 1990 - status.dropped["critical"]!)
    }

    @Test func ageBoundDropsOldEvents() async throws {
        let state = try makeTemporaryDirectory("bounds")
        let journal = try Journal(
            directory: state, settings: .init(commitWindow: .zero, sync: .normal, maxAge: .seconds(86400)),
            logger: Logger(label: "test"), time: .system.with(synchronised: { true }))
        let old = Date().addingTimeInterval(-2 * 86400)
        await journal.append([event(1, .critical, at: old), event(2, .telemetry, at: old), event(3, .telemetry)])
        await journal.enforceBounds()
        #expect(await journal.pendingCount() == [.critical: 0, .telemetry: 1])
        #expect(try JournalStatus.read(stateDirectory: state).dropped == ["critical": 1, "telemetry": 1])
    }

    /// The regression: `max_age` deleted what the wall clock said was old. A Pi that booted offline
    /// with a wrong clock and synced later saw fresh, undelivered events as weeks old, critical
    /// included. Age is now judged only between clocks known to be right.
    @Test func aClockStepNeverMakesUndeliveredEventsExpire() async throws {
        let state = try makeTemporaryDirectory("bounds")
        let synced = Mutex(false)
        let journal = try Journal(
            directory: state, settings: .init(commitWindow: .zero, sync: .normal, maxAge: .seconds(86400)),
            logger: Logger(label: "test"), time: .system.with(synchronised: { synced.withLock { $0 } }))
        // Booted offline, the clock 40 days behind: events recorded with it, flagged unsynchronised.
        let wrong = Date().addingTimeInterval(-40 * 86400)
        await journal.append([event(1, .critical, at: wrong), event(2, .telemetry, at: wrong)])
        // Still unsynchronised: nothing is judged old, not even what a synced clock recorded long ago.
        await journal.enforceBounds()
        #expect(await journal.pendingCount() == [.critical: 1, .telemetry: 1])
        // NTP steps the clock: the rows recorded unsynchronised keep their place (their age is unknown).
        synced.withLock { $0 = true }
        await journal.enforceBounds()
        #expect(await journal.pendingCount() == [.critical: 1, .telemetry: 1])
        #expect(try JournalStatus.read(stateDirectory: state).dropped.values.allSatisfy { $0 == 0 })
        // A row recorded synchronised, now past max_age by a synchronised clock, does go.
        await journal.append([event(3, .telemetry, at: Date().addingTimeInterval(-2 * 86400))])
        await journal.enforceBounds()
        #expect(await journal.pendingCount() == [.critical: 1, .telemetry: 1])
    }

    /// The regression: quarantined rows counted toward `max_bytes` but were never deleted by the
    /// bounds pass, so once they filled it every unsent event was dropped, critical included.
    @Test func theQuarantineHasItsOwnBoundAndNeverCostsAnEvent() async throws {
        let state = try makeTemporaryDirectory("bounds")
        let journal = try Journal(
            directory: state,
            settings: .init(
                // 128 KiB: the file's fixed pages (a dozen tables and indexes, about 48 KiB) and a
                // batch of 100 events fit, so every refused event reaches the quarantine.
                commitWindow: .zero, sync: .normal, maxBytes: 128 << 10,
                quarantineMaxCount: 200, quarantineMaxBytes: 256 << 10),
            logger: Logger(label: "test"))
        // 1,000 events (about 150 KiB of text) that the destination refused for good.
        for start in stride(from: 0, to: 1000, by: 100) {
            await journal.append((start..<start + 100).map { event($0, .telemetry) })
            let refused = await journal.mqtt.next(max: 100)
            await journal.quarantine(sink: Journal.mqttSink, refused, status: 0x90, response: "topic name invalid")
        }
        // Then the alarms of a night with the broker away.
        for n in 0..<30 { await journal.append([event(n, .critical)]) }
        await journal.enforceBounds()
        #expect(await journal.pendingCount()[.critical] == 30, "every critical event kept")
        let status = try JournalStatus.read(stateDirectory: state)
        #expect(status.dropped["critical"] == 0)
        #expect(status.quarantined[Journal.mqttSink] == 200, "the newest 200 kept")
        #expect(status.quarantineDropped == 800)
    }
}
