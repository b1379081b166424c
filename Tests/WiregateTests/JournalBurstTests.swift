import Foundation
import Logging
import Testing
import WiregateCore
import WiregateTestKit

@testable import Wiregate

/// A burst faster than the card commits: the events waiting in memory stay bounded (the memory
/// bound at any input rate) and every one of them is committed. That a card that stalls is never
/// waited for is `SlowJournalTests` (no line lost at 115,200 baud while every commit takes 2 s).
///
/// The regression: the whole of `pending` was the batch of one commit, and appends during it
/// copied the array whole; a 100,000-line burst grew it to 64,000 events (6.4 MB of heap), which
/// glibc then kept (`wiregate-bench burst`).
@Suite struct JournalBurstTests {
    static let settings = try! GatewayConfig.parse(
        yaml: """
            gateway: { id: burst-gw }
            mqtt: { host: 127.0.0.1 }
            journal: { commit_window_ms: 2000 }
            boards: [ { name: b, match: { path: /dev/null }, protocol: kv } ]
            """, file: "burst.yaml"
    ).journal

    static func telemetry(_ count: Int, from first: Int) -> [Event] {
        (first..<first + count).map { n in
            Event(
                board: "b", topic: "wiregate/burst-gw/b/temperature", subtopic: "temperature", payload: "\(n)",
                eventClass: .telemetry, receivedAt: .now)
        }
    }

    /// What one read of a port brings at most, about (a 4 KiB read of short lines).
    static let read = 256

    @Test func aBurstWaitsForTheCardAndStaysBoundedInMemory() async throws {
        let state = try makeTemporaryDirectory("burst")
        let journal = try Journal(directory: state, settings: Self.settings, logger: Logger(label: "test"))
        // A slow card: every commit takes 400 ms (about 5,000 events/s), far slower than the events come.
        await journal.stallCommits(for: .milliseconds(400))
        var peak = 0
        let total = 8 * Journal.commitBatchLimit
        for first in stride(from: 0, to: total, by: Self.read) {
            await journal.enqueue(Self.telemetry(Self.read, from: first))
            peak = max(peak, await journal.pending.count)
        }
        // One batch being written and the next one filling (all of them, without the wait); what
        // a board sends before it is past a UART's rate; and one read more for each wait that ran
        // out before its commit ended (a loaded machine: a card never waited for longer).
        // A commit that took over 2 s (a machine loaded past that) counts as a stalled card, which
        // nobody waits for: then there is no bound to check, only that nothing was lost.
        let expired = await journal.admissions.expired
        if await journal.slowestCommit < Journal.backpressureStall {
            #expect(
                peak <= Journal.commitBatchLimit + Journal.backpressureRate + Self.read * (1 + expired),
                "\(peak) events waited in memory, \(expired) waits ran out")
        }
        await journal.stallCommits(for: .zero)
        await journal.flush()
        #expect(await journal.pending.isEmpty)
        #expect(await journal.pendingCount()[.telemetry] == total, "every event of the burst is in the journal")
        await journal.close()
    }
}
