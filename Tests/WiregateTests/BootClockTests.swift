import Foundation
import Testing
import Wiregate
import WiregateCore

/// The kernel's clocks, read for real.
@Suite struct BootClockTests {
    @Test func theBootIDIsTheKernelsAndStaysTheSame() throws {
        let id = try BootClock.bootID()
        #expect(UUID(uuidString: id) != nil, "\(id)")
        #expect(try BootClock.bootID() == id)
    }

    @Test func anAnchorPairsTimeSinceBootWithTheWallClock() throws {
        let before = BootClock.monotonic()
        let anchor = BootClock.anchor(boot: try BootClock.bootID(), synchronised: false)
        let after = BootClock.monotonic()
        #expect(before <= anchor.monotonic && anchor.monotonic <= after)
        #expect(!anchor.synchronised)
        // The wall clock it read is Foundation's, to within the time the reads took.
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
        #expect(abs(now - anchor.wall) < 1_000_000_000)
        // The time since boot is what /proc/uptime says (which counts suspend too).
        let uptime = try #require(
            Double(try String(contentsOfFile: "/proc/uptime", encoding: .utf8).split(separator: " ")[0]))
        #expect(abs(Double(anchor.monotonic) / 1e9 - uptime) < 1)
    }
}
