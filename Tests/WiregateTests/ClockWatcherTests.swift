import Foundation
import Glibc
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// The clock anchors, written by a real watcher into a real journal, with the kernel's own
/// notice of a clock step. Setting the clock touches the whole machine (the kernel marks it
/// unsynchronised, and every timerfd of every test's gateway fires), so the README's test
/// command runs this as a step of its own (`WIREGATE_CLOCK_TESTS=1`), never beside the suite.
@Suite(
    .serialized,
    .enabled(
        if: ProcessInfo.processInfo.environment["WIREGATE_CLOCK_TESTS"] == "1",
        "it sets the machine's clock: WIREGATE_CLOCK_TESTS=1 swift test --filter ClockWatcherTests"))
struct ClockWatcherTests {
    @Test func anchorsAtTheStartAtSyncPeriodicallyAndAtAStep() async throws {
        let directory = try makeTemporaryDirectory("clock")
        let synced = Mutex(false)
        let time = TimeSource.system.with(synchronised: { synced.withLock { $0 } })
        let journal = try Journal(directory: directory, settings: .init(), logger: Logger(label: "test"), time: time)
        let watcher = ClockWatcher(
            journal: journal, periodic: .milliseconds(300), time: time,
            correctionsTopic: "wiregate/test-gw/time/corrections", logger: Logger(label: "test"))
        let group = ServiceGroup(services: [watcher], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        let reasons = { @Sendable () async -> [String] in await journal.anchors().map(\.reason) }
        #expect(await eventually { await reasons() == ["start"] })
        let start = try #require(await journal.anchors().first?.anchor)
        #expect(start.boot == (try BootClock.bootID()) && !start.synchronised)

        // The clock becomes synchronised: an anchor then, and every period while it stays so.
        synced.withLock { $0 = true }
        #expect(await eventually { await reasons().contains("synchronised") })
        #expect(await eventually { await reasons().filter { $0 == "periodic" }.count >= 2 })

        // The wall clock set, as root, one millisecond ahead (forward: nothing else on the machine
        // sees time go back): the kernel cancels the watcher's timerfd, and a step anchor is written.
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        now.tv_nsec += 1_000_000
        if now.tv_nsec >= 1_000_000_000 { (now.tv_sec, now.tv_nsec) = (now.tv_sec + 1, now.tv_nsec - 1_000_000_000) }
        #expect(clock_settime(CLOCK_REALTIME, &now) == 0, "clock_settime needs root: errno \(errno)")
        #expect(await eventually { await reasons().contains("step") })

        // Unsynchronised again: said, and no periodic anchor after it.
        synced.withLock { $0 = false }
        #expect(await eventually { await reasons().last == "unsynchronised" })
        let count = await journal.anchors().count
        try await Task.sleep(for: .milliseconds(800))
        #expect(await journal.anchors().count == count)

        // With them, a moment of this boot gets its wall time back to the millisecond.
        let anchors = await journal.anchors().map(\.anchor)
        let moment = BootClock.anchor(boot: start.boot, synchronised: false)
        let repair = ClockRepair.repair(
            boot: moment.boot, monotonic: moment.monotonic, synchronised: false, anchors: anchors)
        #expect(repair.quality == .corrected)
        #expect(abs((repair.corrected ?? 0) - moment.wall) < 10_000_000, "\(repair) vs \(moment.wall)")

        await group.triggerGracefulShutdown()
        try await running.value
        await journal.close()
        // Kept across a reopen, with the boot known once
        let reopened = try Journal(directory: directory, settings: .init(), logger: Logger(label: "test"))
        // (and the reopen's own start anchor: a journal writes one as it opens).
        #expect(await reopened.anchors().count == anchors.count + 1)
        #expect(await reopened.anchors().map(\.reason).filter { $0 == "start" }.count == 2)
        await reopened.close()
    }
}
