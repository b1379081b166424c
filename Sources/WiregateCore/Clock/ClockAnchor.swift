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

    /// An anchor now: the wall clock read between two reads of the monotonic one, kept when
    /// they are within 1 ms (a few tries: a preemption between the reads is rare); after that,
    /// the closest reading taken, its error half its gap.
    /// - Parameters:
    ///   - boot: the boot the monotonic clock counts from.
    ///   - synchronised: whether the wall clock is synchronised.
    ///   - monotonic: reads `CLOCK_BOOTTIME`, in nanoseconds.
    ///   - wall: reads the wall clock, in nanoseconds since the epoch.
    public static func read(
        boot: String, synchronised: Bool, monotonic: () -> Int64, wall: () -> Int64
    ) -> ClockAnchor {
        var closest: (before: Int64, wall: Int64, after: Int64)?
        for _ in 0..<5 {
            let before = monotonic()
            let now = wall()
            let after = monotonic()
            if let anchor = reading(boot: boot, before: before, wall: now, after: after, synchronised: synchronised) {
                return anchor
            }
            if closest.map({ after - before < $0.after - $0.before }) ?? true { closest = (before, now, after) }
        }
        let reading = closest!
        return ClockAnchor(
            boot: boot, monotonic: reading.before + (reading.after - reading.before) / 2, wall: reading.wall,
            synchronised: synchronised)
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

/// The synchronised anchors of every boot, sorted, so that dating an event is a binary search
/// (a replay of a million events recorded offline dates each one; `ClockRepair.anchor` scans).
public struct AnchorIndex: Sendable, Equatable {
    /// Per boot, its synchronised anchors by monotonic time.
    private var byBoot: [String: [ClockAnchor]] = [:]

    /// An index of `anchors` (the unsynchronised ones are left out: they repair nothing).
    public init(_ anchors: [ClockAnchor] = []) {
        for anchor in anchors { insert(anchor) }
    }

    /// Adds one anchor; an unsynchronised one changes nothing.
    public mutating func insert(_ anchor: ClockAnchor) {
        guard anchor.synchronised else { return }
        var list = byBoot[anchor.boot, default: []]
        let index = list.partitioningIndex { $0.monotonic >= anchor.monotonic }
        if index < list.count, list[index].monotonic == anchor.monotonic {
            list[index] = anchor
        } else {
            list.insert(anchor, at: index)
        }
        byBoot[anchor.boot] = list
    }

    /// Whether `boot` has a synchronised anchor (its unsynchronised events can be repaired).
    public func isKnown(_ boot: String) -> Bool { byBoot[boot] != nil }

    /// How many anchors it holds, over every boot.
    public var count: Int { byBoot.values.reduce(0) { $0 + $1.count } }

    /// The synchronised anchor of `boot` nearest in monotonic time to `monotonic`, as
    /// `ClockRepair.anchor` would choose it (the earlier of two at the same distance).
    public func nearest(boot: String, monotonic: Int64) -> ClockAnchor? {
        guard let list = byBoot[boot], !list.isEmpty else { return nil }
        let index = list.partitioningIndex { $0.monotonic >= monotonic }
        if index == 0 { return list[0] }
        if index == list.count { return list[index - 1] }
        let before = list[index - 1], after = list[index]
        return monotonic - before.monotonic <= after.monotonic - monotonic ? before : after
    }

    /// An event's time, as `ClockRepair.repair` gives it, from this index.
    /// - Parameters:
    ///   - boot: the boot the event was recorded in; nil for an event journaled before boots
    ///     were recorded (it can never be repaired).
    ///   - monotonic: its `CLOCK_BOOTTIME`, in nanoseconds; nil as for `boot`.
    ///   - synchronised: whether the clock was synchronised when it was recorded.
    public func time(boot: String?, monotonic: Int64?, synchronised: Bool) -> EventTime {
        if synchronised { return EventTime(quality: .synced, corrected: nil) }
        guard let boot, let monotonic, let anchor = nearest(boot: boot, monotonic: monotonic) else {
            return EventTime(quality: .unsynced, corrected: nil)
        }
        return EventTime(quality: .corrected, corrected: anchor.wallTime(atMonotonic: monotonic))
    }
}

/// What is known of one event's time beside the time its clock gave it.
public struct EventTime: Sendable, Hashable {
    /// How far its time can be trusted.
    public var quality: TimeQuality
    /// For a `corrected` event, its true wall time, in nanoseconds since the epoch.
    public var corrected: Int64?

    /// - Parameters:
    ///   - quality: how far the event's time can be trusted.
    ///   - corrected: the true wall time of a corrected event, in nanoseconds since the epoch.
    public init(quality: TimeQuality, corrected: Int64?) {
        self.quality = quality
        self.corrected = corrected
    }
}

/// One stretch of a boot during which the clock was unsynchronised and unstepped, and what its
/// events' times were off by: what a correction record tells a consumer that already has them.
public struct TimeCorrection: Sendable, Equatable {
    /// The boot the stretch belongs to.
    public var boot: String
    /// The stretch's events are those of `boot` read within `monotonic` (nanoseconds since that
    /// boot) and sent unsynchronised: what decides.
    public var monotonic: Range<Int64>
    /// The sequence numbers of the stretch, for people: a line read in the moment of a clock
    /// change may be numbered just outside them (it is read before it is numbered).
    public var seqs: ClosedRange<Int64>
    /// What to add to those events' times (`ts`) for the true ones, in nanoseconds.
    public var offset: Int64
    /// Whether an anchor ends the stretch; an open one (the clock unsynchronised now) may grow.
    public var isClosed: Bool

    /// - Parameters:
    ///   - boot: the boot of the stretch.
    ///   - monotonic: its start and end since that boot, in nanoseconds.
    ///   - seqs: the sequence numbers recorded during it.
    ///   - offset: nanoseconds to add to their times.
    public init(boot: String, monotonic: Range<Int64>, seqs: ClosedRange<Int64>, offset: Int64, isClosed: Bool = true) {
        self.boot = boot
        self.monotonic = monotonic
        self.isClosed = isClosed
        self.seqs = seqs
        self.offset = offset
    }
}

extension ClockRepair {
    /// An anchor as the journal keeps it: with the last sequence number handed out when it was
    /// read, which bounds the stretch it begins.
    public typealias Marked = (anchor: ClockAnchor, lastSeq: Int64)

    /// The corrections that the synchronised anchors of `index` make possible for the
    /// unsynchronised stretches of one boot.
    ///
    /// Each unsynchronised anchor begins a stretch (the start, a step that left the clock
    /// unsynchronised, a loss of synchronisation), which the boot's next anchor ends; the
    /// stretch's events are read from its anchor's monotonic time up to the next one's (or `now`
    /// for the last), and numbered after its anchor's `lastSeq`, up to the next one's (or
    /// `lastSeq`, the journal's now). Its offset is the true time of its anchor's moment less
    /// what the clock said then. A stretch in which nothing was numbered gives none.
    /// - Parameters:
    ///   - anchors: the boot's anchors, any order, each with its `lastSeq`.
    ///   - index: the synchronised anchors known.
    ///   - lastSeq: the last sequence number handed out now.
    ///   - now: the boot's monotonic time now, in nanoseconds.
    public static func corrections(of anchors: [Marked], index: AnchorIndex, lastSeq: Int64, now: Int64)
        -> [TimeCorrection]
    {
        let sorted = anchors.sorted { $0.anchor.monotonic < $1.anchor.monotonic }
        var corrections: [TimeCorrection] = []
        for (position, marked) in sorted.enumerated() where !marked.anchor.synchronised {
            let recorded = marked.anchor
            guard let anchor = index.nearest(boot: recorded.boot, monotonic: recorded.monotonic) else { continue }
            let next = position + 1 < sorted.count ? sorted[position + 1] : nil
            let end = next?.lastSeq ?? lastSeq
            let until = next?.anchor.monotonic ?? now
            guard end > marked.lastSeq, until > recorded.monotonic else { continue }
            corrections.append(
                TimeCorrection(
                    boot: recorded.boot, monotonic: recorded.monotonic..<until, seqs: (marked.lastSeq + 1)...end,
                    offset: anchor.wallTime(atMonotonic: recorded.monotonic) - recorded.wall, isClosed: next != nil))
        }
        return corrections
    }
}

extension Array {
    /// The first index whose element satisfies `belongs`, for an array partitioned by it.
    fileprivate func partitioningIndex(where belongs: (Element) -> Bool) -> Int {
        var low = 0, high = count
        while low < high {
            let middle = (low + high) / 2
            if belongs(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
