/// One reading of both clocks: the kernel's time since boot (`CLOCK_BOOTTIME`, which counts
/// suspend) and the wall clock, with whether the wall clock was synchronised then.
///
/// A Raspberry Pi has no clock battery: after a power cut it boots with the time it last saved
/// and keeps it until NTP answers, maybe days later. The time since boot is right all along, so
/// once one synchronised anchor of a boot is known, the true wall time of every moment of that
/// boot follows: `anchor.wall − (anchor.monotonic − moment)`.
public struct ClockAnchor: Sendable, Equatable, Hashable {
    /// `/proc/sys/kernel/random/boot_id`: which boot the monotonic time counts from.
    public var boot: String
    /// Nanoseconds since that boot (`CLOCK_BOOTTIME`).
    public var monotonic: Int64
    /// The wall clock at that moment, in nanoseconds since the Unix epoch.
    public var wall: Int64
    /// Whether the wall clock was synchronised then (only such an anchor repairs anything).
    public var synchronised: Bool

    /// An anchor of `boot`.
    /// - Parameters:
    ///   - boot: the boot id.
    ///   - monotonic: nanoseconds since that boot.
    ///   - wall: nanoseconds since the Unix epoch, as the wall clock said.
    ///   - synchronised: whether the wall clock was synchronised.
    public init(boot: String, monotonic: Int64, wall: Int64, synchronised: Bool) {
        self.boot = boot
        self.monotonic = monotonic
        self.wall = wall
        self.synchronised = synchronised
    }

    /// The anchor from a reading of the monotonic clock before and after the wall clock: the
    /// midpoint, when the two monotonic readings are within `bound` of each other (the wall
    /// clock was read at some moment between them, so the error is at most half their gap);
    /// nil when they are not (the thread was preempted between the reads: read again).
    /// - Parameters:
    ///   - before: `CLOCK_BOOTTIME` just before the wall clock was read, in nanoseconds.
    ///   - wall: the wall clock, in nanoseconds since the epoch.
    ///   - after: `CLOCK_BOOTTIME` just after.
    ///   - bound: the widest gap taken; 1 ms by default.
    public static func reading(
        boot: String, before: Int64, wall: Int64, after: Int64, synchronised: Bool, bound: Int64 = 1_000_000
    ) -> ClockAnchor? {
        guard after >= before, after - before <= bound else { return nil }
        return ClockAnchor(boot: boot, monotonic: before + (after - before) / 2, wall: wall, synchronised: synchronised)
    }

    /// The wall time of `monotonic` (same boot), as this anchor tells it.
    public func wallTime(atMonotonic monotonic: Int64) -> Int64 {
        wall - (self.monotonic - monotonic)
    }
}

/// How far an event's time can be trusted.
public enum TimeQuality: String, Sendable, Equatable, CaseIterable, Codable {
    /// Recorded with a synchronised clock: its own time is right.
    case synced
    /// Recorded unsynchronised, then repaired from a synchronised anchor of the same boot.
    case corrected
    /// Recorded unsynchronised, and no synchronised anchor of its boot is known (yet, or ever:
    /// a boot that ended before any synchronisation stays so).
    case unsynced
}

/// What the anchors say of one event's time: pure, so that the repair is tested without a clock.
public enum ClockRepair {
    /// The synchronised anchor of `boot` nearest in monotonic time to `monotonic` (the crystal
    /// drifts: a few parts per million, so the nearest anchor is the best); nil when that boot
    /// has none.
    public static func anchor(forBoot boot: String, monotonic: Int64, among anchors: [ClockAnchor]) -> ClockAnchor? {
        anchors.lazy.filter { $0.boot == boot && $0.synchronised }.min { first, second in
            abs(first.monotonic - monotonic) < abs(second.monotonic - monotonic)
        }
    }

    /// An event's time quality and, when it was recorded unsynchronised and its boot has a
    /// synchronised anchor, its corrected wall time (nanoseconds since the epoch). The event's
    /// own time is never rewritten: the correction goes beside it.
    /// - Parameters:
    ///   - boot: the boot the event was recorded in.
    ///   - monotonic: its `CLOCK_BOOTTIME`, in nanoseconds.
    ///   - synchronised: whether the clock was synchronised when it was recorded.
    ///   - anchors: every anchor known.
    public static func repair(boot: String, monotonic: Int64, synchronised: Bool, anchors: [ClockAnchor]) -> (
        quality: TimeQuality, corrected: Int64?
    ) {
        if synchronised { return (.synced, nil) }
        guard let anchor = anchor(forBoot: boot, monotonic: monotonic, among: anchors) else { return (.unsynced, nil) }
        return (.corrected, anchor.wallTime(atMonotonic: monotonic))
    }

    /// The offset, in nanoseconds, that turns the wall times an unsynchronised stretch of a boot
    /// recorded into true ones (what a correction record carries): the anchor's wall time less
    /// what the clock said at the same moment. Nil when the boot has no synchronised anchor.
    /// - Parameter recorded: an unsynchronised anchor of the stretch (what the clock said then).
    public static func offset(of recorded: ClockAnchor, anchors: [ClockAnchor]) -> Int64? {
        guard let anchor = anchor(forBoot: recorded.boot, monotonic: recorded.monotonic, among: anchors) else {
            return nil
        }
        return anchor.wallTime(atMonotonic: recorded.monotonic) - recorded.wall
    }
}
