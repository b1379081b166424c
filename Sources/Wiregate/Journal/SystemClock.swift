import CTimex
import Foundation
import WiregateCore

/// Whether the wall clock is known to be synchronised (NTP or similar).
///
/// A Pi has no RTC: offline it boots with the time it last saved, which can be days
/// off. Events carry this flag so the backend knows which timestamps to trust, so it must
/// never say "synchronised" without knowing it.
public enum SystemClock {
    /// What systemd-timesyncd creates once it has synchronised the clock (in /run: gone at boot).
    static let timesyncdFlag = "/run/systemd/timesync/synchronized"

    /// Asks timesyncd's flag file, then the kernel (`adjtimex`). The journal calls it for each batch
    /// of events it numbers, and before it judges events' age.
    /// - Returns: true only when one of them says so; false when it is not known (the kernel call refused).
    public static func isSynchronised() -> Bool {
        // timesyncd's own word, readable under any hardening.
        if FileManager.default.fileExists(atPath: timesyncdFlag) { return true }
        var timex = CTimex.timex()
        let state = adjtimex(&timex)
        // -1: the call failed (EPERM under a seccomp filter such as systemd's ProtectClock=yes):
        // not known, so not synchronised. TIME_ERROR (5) or STA_UNSYNC: the kernel says the clock
        // is not disciplined.
        return state >= 0 && state != TIME_ERROR && (timex.status & STA_UNSYNC) == 0
    }
}

/// The clocks an event's time is read from, in one place: the system's, or a test's that can be
/// set behind and then right without touching the machine's (which every other test would feel).
public struct TimeSource: Sendable {
    /// The wall clock.
    public var wall: @Sendable () -> Date
    /// Nanoseconds since boot, suspend included (`CLOCK_BOOTTIME`).
    public var monotonic: @Sendable () -> Int64
    /// Whether the wall clock is known to be synchronised.
    public var synchronised: @Sendable () -> Bool
    /// This boot's id; nil when it cannot be read (the run's times can then never be repaired).
    public var boot: String?
    /// Steps of the wall clock that the kernel reports (see `ClockSteps`); nil for a source whose
    /// steps are seen only by comparing the two clocks.
    public var kernelSteps: Bool

    /// A source of the given clocks.
    /// - Parameters:
    ///   - wall: the wall clock.
    ///   - monotonic: nanoseconds since boot.
    ///   - synchronised: whether the wall clock is synchronised.
    ///   - boot: the boot id.
    ///   - kernelSteps: whether the kernel's timerfd reports this wall clock's steps.
    public init(
        wall: @escaping @Sendable () -> Date, monotonic: @escaping @Sendable () -> Int64,
        synchronised: @escaping @Sendable () -> Bool, boot: String?, kernelSteps: Bool
    ) {
        self.wall = wall
        self.monotonic = monotonic
        self.synchronised = synchronised
        self.boot = boot
        self.kernelSteps = kernelSteps
    }

    /// The machine's clocks.
    public static var system: TimeSource {
        TimeSource(
            wall: { Date() }, monotonic: BootClock.monotonic, synchronised: SystemClock.isSynchronised,
            boot: try? BootClock.bootID(), kernelSteps: true)
    }

    /// The same clocks, but for whether the wall clock is synchronised.
    public func with(synchronised: @escaping @Sendable () -> Bool) -> TimeSource {
        var source = self
        source.synchronised = synchronised
        return source
    }

    /// An anchor now, of these clocks (see `ClockAnchor.read`).
    public func anchor(boot: String) -> ClockAnchor {
        let wall = self.wall
        return ClockAnchor.read(
            boot: boot, synchronised: synchronised(), monotonic: monotonic, wall: { Self.nanoseconds(wall()) })
    }

    /// A date in nanoseconds since the epoch (a Date's Double holds about 0.2 µs of it today).
    public static func nanoseconds(_ date: Date) -> Int64 {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        return Int64(seconds) * 1_000_000_000 + Int64(((date.timeIntervalSince1970 - seconds) * 1e9).rounded())
    }
}
