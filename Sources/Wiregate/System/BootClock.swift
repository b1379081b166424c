import Foundation
import WiregateCore

/// The kernel's two clocks as honest time needs them: which boot this is, the time since it
/// (`CLOCK_BOOTTIME`: it counts suspend, and no one can set it), and anchors pairing it with
/// the wall clock.
public enum BootClock {
    /// Where the kernel gives this boot's id (a random UUID, new at every boot).
    static let bootIDPath = "/proc/sys/kernel/random/boot_id"

    /// This boot's id.
    /// - Throws: when `/proc` cannot be read (no boot id: the times of this run cannot be repaired).
    public static func bootID() throws -> String {
        try String(contentsOfFile: bootIDPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Nanoseconds since boot, suspend included.
    public static func monotonic() -> Int64 { read(CLOCK_BOOTTIME) }

    /// The wall clock, in nanoseconds since the Unix epoch.
    public static func wall() -> Int64 { read(CLOCK_REALTIME) }

    private static func read(_ clock: clockid_t) -> Int64 {
        var time = timespec()
        // Cannot fail for these clocks on Linux (EINVAL is for an unknown clock id).
        clock_gettime(clock, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }

    /// An anchor now, of the machine's clocks (see `ClockAnchor.read`).
    public static func anchor(boot: String, synchronised: Bool) -> ClockAnchor {
        ClockAnchor.read(boot: boot, synchronised: synchronised, monotonic: monotonic, wall: wall)
    }
}
