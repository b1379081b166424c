import Foundation
import Logging
import Testing
import WiregateCore
import WiregateTestKit

@testable import Wiregate

/// Sequence numbers never repeat for a gateway id, whatever happened to the journal file.
///
/// The regression: a journal moved aside (corrupt, or by hand) restarted its sequence at 1; the
/// backend, which deduplicates by `<gateway>:<seq>`, answered "duplicate" for every new event and
/// the gateway deleted them, and MQTT consumers saw `seq` go backwards.
@Suite struct JournalSequenceTests {
    static let settings = try! GatewayConfig.parse(
        yaml: """
            gateway: { id: seq-gw }
            mqtt: { host: 127.0.0.1 }
            journal: { commit_window_ms: 60000 }
            boards: [ { name: b, match: { path: /dev/null }, protocol: kv } ]
            """, file: "seq.yaml"
    ).journal

    static func events(_ count: Int, _ eventClass: EventClass = .critical) -> [Event] {
        (0..<count).map { n in
            Event(
                board: "b", topic: "wiregate/seq-gw/b/door", subtopic: "door", payload: "\(n)", eventClass: eventClass,
                receivedAt: .now)
        }
    }

    @Test func aJournalMovedAsideNeverRestartsTheSequence() async throws {
        let state = try makeTemporaryDirectory("seq-aside")
        do {
            let journal = try Journal(directory: state, settings: Self.settings, logger: Logger(label: "test"))
            await journal.append(Self.events(100))
            #expect(await journal.lastSeq == 100)
            await journal.close()
        }
        for suffix in ["", "-wal", "-shm"]
        where FileManager.default.fileExists(atPath: state + "/journal.sqlite" + suffix) {
            try FileManager.default.moveItem(
                atPath: state + "/journal.sqlite" + suffix, toPath: state + "/journal.sqlite.aside" + suffix)
        }
        let fresh = try Journal(directory: state, settings: Self.settings, logger: Logger(label: "test"))
        await fresh.append(Self.events(1))
        #expect(await fresh.lastSeq == 101, "a clean stop records the exact last number: no gap, no repeat")
    }

    /// Telemetry published live but never committed (the daemon was killed inside the commit window)
    /// had numbers a consumer saw: they are never handed out again.
    @Test func numbersOfUncommittedEventsAreNeverHandedOutAgain() async throws {
        let state = try makeTemporaryDirectory("seq-crash")
        let crashed = try Journal(directory: state, settings: Self.settings, logger: Logger(label: "test"))
        await crashed.append(Self.events(10))  // critical: committed at once
        await crashed.append(Self.events(50, .telemetry))  // within the 60 s window: in memory only
        #expect(await crashed.lastSeq == 60)
        // The process dies here: nothing more of `crashed` reaches the disk. A new one opens the same file.
        let restarted = try Journal(directory: state, settings: Self.settings, logger: Logger(label: "test"))
        await restarted.append(Self.events(1))
        #expect(await restarted.lastSeq > 60)
        withExtendedLifetime(crashed) {}
    }

    /// Needs root for mount(8). The disk journal's last numbers are in its WAL (the daemon was killed,
    /// nothing checkpointed) when the card turns read-only: the memory journal still goes on after
    /// them (an immutable read of the file alone missed them), and the disk journal, writable again,
    /// after the memory journal's, taking over its unsent events.
    @Test func theMemoryFallbackAndTheDiskJournalNeverShareANumber() async throws {
        let disk = try makeTemporaryDirectory("seq-disk")
        let memory = try makeTemporaryDirectory("seq-memory")
        try runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", disk])
        defer { try? runCommand("/bin/umount", ["-l", disk]) }
        // A daemon killed with its last rows only in the WAL: its files as they were, copied onto the card.
        let running = try makeTemporaryDirectory("seq-killed")
        let killed = try Journal.open(
            directory: running, memoryFallback: memory, settings: Self.settings, logger: Logger(label: "test"))
        await killed.append(Self.events(20))
        #expect(await killed.lastSeq == 20)
        for name in try FileManager.default.contentsOfDirectory(atPath: running) {
            try FileManager.default.copyItem(atPath: running + "/" + name, toPath: disk + "/" + name)
        }
        #expect(FileManager.default.fileExists(atPath: disk + "/journal.sqlite-wal"))
        // Then the card turns read-only.
        try runCommand("/bin/mount", ["-o", "remount,ro", disk])
        let inMemory = try Journal.open(
            directory: disk, memoryFallback: memory, settings: Self.settings, logger: Logger(label: "test"))
        #expect(!inMemory.isDurable)
        await inMemory.append(Self.events(5))
        let memoryFirst = await inMemory.lastSeq - 4
        #expect(memoryFirst > 20, "the memory journal reused the disk journal's numbers")
        let memoryLast = await inMemory.lastSeq
        await inMemory.close()
        // Back on the disk, writable again: after the memory journal's numbers, not after its own.
        try runCommand("/bin/mount", ["-o", "remount,rw", disk])
        let back = try Journal.open(
            directory: disk, memoryFallback: memory, settings: Self.settings, logger: Logger(label: "test"))
        #expect(back.isDurable)
        await back.append(Self.events(1))
        #expect(await back.lastSeq > memoryLast)
        // What the memory journal could not send is back in the disk journal, not abandoned in
        // /dev/shm: the killed journal's 20, the memory journal's 5 and the new one.
        #expect(await back.pendingCount()[.critical] == 26)
        #expect(!FileManager.default.fileExists(atPath: memory + "/journal.sqlite"))
        await back.close()
        withExtendedLifetime(killed) {}
    }

    /// Needs root for mount(8). Found by the fault campaign (a soak seed, 2026-12-02): the card full
    /// when a reservation fell due, then the daemon killed, reused numbers that consumers had seen.
    /// The reservation the card refused is kept in the memory fallback's directory, which a
    /// restart reads.
    @Test func aCrashWhileTheCardIsFullNeverRepeatsANumber() async throws {
        let disk = try makeTemporaryDirectory("seq-full")
        let memory = try makeTemporaryDirectory("seq-full-memory")
        try runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", disk])
        defer { try? runCommand("/bin/umount", ["-l", disk]) }
        let crashed = try Journal.open(
            directory: disk, memoryFallback: memory, settings: Self.settings, logger: Logger(label: "test"))
        await crashed.append(Self.events(10))
        // The card fills up to its last block.
        _ = try? runCommand("/bin/dd", ["if=/dev/zero", "of=\(disk)/fill", "bs=64k"])
        // Past half the first block of 10,000: the next reservation falls due while nothing can be written.
        await crashed.append(Self.events(Int(SequenceAllocator.defaultBlock) + 2_000, .telemetry))
        let handedOut = await crashed.lastSeq
        #expect(handedOut == SequenceAllocator.defaultBlock + 2_010)
        // Written off the journal's actor: wait for it, then the process dies (nothing more of `crashed` runs).
        let deadline = ContinuousClock.now + .seconds(10)
        while SequenceFile(directory: memory).read() < handedOut, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(
            SequenceFile(directory: memory).read() >= handedOut, "the reservation the card refused is kept in memory")
        // Room again, and a restart: after every number handed out, not after the card's old ceiling.
        try FileManager.default.removeItem(atPath: disk + "/fill")
        let restarted = try Journal.open(
            directory: disk, memoryFallback: memory, settings: Self.settings, logger: Logger(label: "test"))
        await restarted.append(Self.events(1))
        #expect(await restarted.lastSeq > handedOut)
        await restarted.close()
        withExtendedLifetime(crashed) {}
    }

    @Test func theAllocatorReservesBeforeItHandsOut() {
        var allocator = SequenceAllocator(after: 41, block: 100)
        let first = allocator.take(3)
        #expect(first.first == 42 && first.reserve == 144)
        let early = allocator.take(10)
        #expect(early.first == 45 && early.reserve == nil, "half the block is left")
        let second = allocator.take(45)
        #expect(
            second.first == 55 && second.reserve == 244, "half used: the next block is asked for, before it is needed")
        let third = allocator.take(1)
        #expect(third.first == 100 && third.reserve == nil)
        var opened = SequenceAllocator(after: 7, block: 10)
        #expect(opened.reserveAhead() == 17)
        #expect(opened.take(4).reserve == nil)
        #expect(opened.take(2).reserve == 27, "14 + half a block is past 17")
    }
}
