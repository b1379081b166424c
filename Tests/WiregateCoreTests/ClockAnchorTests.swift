import Testing

@testable import WiregateCore

/// The anchor arithmetic of honest time: pure, so checked here to the nanosecond.
@Suite struct ClockAnchorTests {
    static let second: Int64 = 1_000_000_000
    /// 2026-12-04T12:00:00Z.
    static let noon: Int64 = 1_796_385_600 * second

    @Test func aReadingIsTheMidpointWhenTheTwoMonotonicReadsAreClose() {
        let anchor = ClockAnchor.reading(boot: "b1", before: 1_000, wall: Self.noon, after: 1_400, synchronised: true)
        #expect(anchor == ClockAnchor(boot: "b1", monotonic: 1_200, wall: Self.noon, synchronised: true))
        // Preempted between the reads (2 ms apart): no anchor, read again.
        #expect(
            ClockAnchor.reading(boot: "b1", before: 0, wall: Self.noon, after: 2_000_001, synchronised: true) == nil)
        // Monotonic going backwards is not a reading.
        #expect(ClockAnchor.reading(boot: "b1", before: 10, wall: Self.noon, after: 5, synchronised: true) == nil)
    }

    @Test func anEventOfAnUnsyncedStretchGetsTheTrueTimeFromItsBootsSyncedAnchor() {
        // Booted offline 3 hours behind; 2 hours after boot the clock is set right.
        let behind = 3 * 3600 * Self.second
        let boot = "b1"
        let startup = ClockAnchor(boot: boot, monotonic: 5 * Self.second, wall: Self.noon - behind, synchronised: false)
        let synced = ClockAnchor(
            boot: boot, monotonic: 2 * 3600 * Self.second, wall: Self.noon - 5 * Self.second + 2 * 3600 * Self.second,
            synchronised: true)
        let anchors = [startup, synced]
        // A door opened 10 minutes after boot: true time noon − 5 s + 10 min.
        let monotonic = 600 * Self.second
        let repair = ClockRepair.repair(boot: boot, monotonic: monotonic, synchronised: false, anchors: anchors)
        #expect(repair.quality == .corrected)
        #expect(repair.corrected == Self.noon - 5 * Self.second + 600 * Self.second)
        // What the correction record carries for the stretch: exactly the 3 hours the clock was behind.
        #expect(ClockRepair.offset(of: startup, anchors: anchors) == behind)
        // An event recorded synchronised keeps its own time.
        #expect(
            ClockRepair.repair(boot: boot, monotonic: monotonic, synchronised: true, anchors: anchors) == (.synced, nil)
        )
    }

    @Test func aBootThatNeverSyncedStaysUnsyncedAndAnotherBootsAnchorNeverRepairsIt() {
        let anchors = [
            ClockAnchor(
                boot: "b1", monotonic: Self.second, wall: Self.noon - 86_400 * Self.second, synchronised: false),
            ClockAnchor(boot: "b2", monotonic: Self.second, wall: Self.noon, synchronised: true)
        ]
        let repair = ClockRepair.repair(boot: "b1", monotonic: 50 * Self.second, synchronised: false, anchors: anchors)
        #expect(repair.quality == .unsynced && repair.corrected == nil)
        #expect(ClockRepair.offset(of: anchors[0], anchors: anchors) == nil)
    }

    @Test func theNearestSyncedAnchorDecidesSoDriftAndAStepBackDoNotCarryFar() {
        // Synced at 1 h and again at 5 h; the clock was stepped back 2 s in between (NTP's
        // correction of a crystal's drift): each event takes the anchor nearest to it.
        let boot = "b1"
        let early = ClockAnchor(boot: boot, monotonic: 3600 * Self.second, wall: Self.noon, synchronised: true)
        let late = ClockAnchor(
            boot: boot, monotonic: 5 * 3600 * Self.second, wall: Self.noon + 4 * 3600 * Self.second - 2 * Self.second,
            synchronised: true)
        let anchors = [late, early]
        #expect(ClockRepair.anchor(forBoot: boot, monotonic: 0, among: anchors) == early)
        #expect(ClockRepair.anchor(forBoot: boot, monotonic: 6 * 3600 * Self.second, among: anchors) == late)
        let beforeBoth = ClockRepair.repair(
            boot: boot, monotonic: 60 * Self.second, synchronised: false, anchors: anchors)
        #expect(beforeBoth.corrected == Self.noon - 3540 * Self.second)
        // Monotonic order is kept whatever the wall clock did: later monotonic, later corrected time
        // (within one anchor's reach).
        let a = ClockRepair.repair(boot: boot, monotonic: 100 * Self.second, synchronised: false, anchors: anchors)
        let b = ClockRepair.repair(boot: boot, monotonic: 101 * Self.second, synchronised: false, anchors: anchors)
        #expect(a.corrected! < b.corrected!)
    }

    /// The index the journal dates events with agrees with the plain scan, on random anchors.
    @Test func theIndexFindsWhatTheScanFinds() {
        var generator = SeededGenerator(seed: 18)
        for _ in 0..<200 {
            let boots = ["b1", "b2", "b3"]
            let anchors = (0..<Int.random(in: 0...12, using: &generator)).map { _ in
                ClockAnchor(
                    boot: boots.randomElement(using: &generator)!,
                    monotonic: Int64.random(in: 0...1_000_000, using: &generator),
                    wall: Int64.random(in: 0...Self.noon, using: &generator),
                    synchronised: Bool.random(using: &generator))
            }
            let index = AnchorIndex(anchors)
            for _ in 0..<20 {
                let boot = boots.randomElement(using: &generator)!
                let monotonic = Int64.random(in: -10...1_000_010, using: &generator)
                let scanned = ClockRepair.anchor(forBoot: boot, monotonic: monotonic, among: anchors)
                let found = index.nearest(boot: boot, monotonic: monotonic)
                #expect((scanned == nil) == (found == nil))
                if let scanned, let found {
                    #expect(abs(scanned.monotonic - monotonic) == abs(found.monotonic - monotonic))
                    #expect(found.synchronised && found.boot == boot)
                }
                let synced = Bool.random(using: &generator)
                let time = index.time(boot: boot, monotonic: monotonic, synchronised: synced)
                let repair = ClockRepair.repair(
                    boot: boot, monotonic: monotonic, synchronised: synced, anchors: anchors)
                #expect(time.quality == repair.quality)
                #expect((time.corrected == nil) == (repair.corrected == nil))
            }
        }
        // An event journaled before boots were recorded can never be repaired.
        let index = AnchorIndex([ClockAnchor(boot: "b1", monotonic: 0, wall: Self.noon, synchronised: true)])
        #expect(index.time(boot: nil, monotonic: nil, synchronised: false).quality == .unsynced)
        #expect(index.time(boot: nil, monotonic: nil, synchronised: true).quality == .synced)
    }

    /// A boot that started 3 h behind, was stepped by timesyncd's saved time (still unsynced, now
    /// 10 min behind), then synchronised: two stretches, each with its own offset and seq range.
    @Test func eachUnsyncedStretchGetsItsOwnCorrection() {
        let boot = "b1"
        let start = ClockAnchor(
            boot: boot, monotonic: 2 * Self.second, wall: Self.noon - 3 * 3600 * Self.second, synchronised: false)
        let restored = ClockAnchor(
            boot: boot, monotonic: 60 * Self.second, wall: Self.noon + 58 * Self.second - 600 * Self.second,
            synchronised: false)
        let synced = ClockAnchor(
            boot: boot, monotonic: 900 * Self.second, wall: Self.noon + 898 * Self.second, synchronised: true)
        let marked: [ClockRepair.Marked] = [(synced, 40), (start, 0), (restored, 25)]
        let index = AnchorIndex(marked.map(\.anchor))
        let corrections = ClockRepair.corrections(of: marked, index: index, lastSeq: 55, now: 950 * Self.second)
        #expect(
            corrections == [
                TimeCorrection(
                    boot: boot, monotonic: (2 * Self.second)..<(60 * Self.second), seqs: 1...25,
                    offset: 3 * 3600 * Self.second),
                TimeCorrection(
                    boot: boot, monotonic: (60 * Self.second)..<(900 * Self.second), seqs: 26...40,
                    offset: 600 * Self.second)
            ])
        // Before the boot is synchronised: nothing to say yet.
        #expect(
            ClockRepair.corrections(of: [(start, 0), (restored, 25)], index: AnchorIndex(), lastSeq: 30, now: 0).isEmpty
        )
        // A stretch in which nothing was numbered (a restart right before the sync) gives none.
        #expect(ClockRepair.corrections(of: [(start, 7), (synced, 7)], index: index, lastSeq: 9, now: 0).isEmpty)
        // The last stretch of a boot still unsynchronised reaches the journal's now.
        let lost = ClockAnchor(boot: boot, monotonic: 1000 * Self.second, wall: Self.noon, synchronised: false)
        #expect(
            ClockRepair.corrections(of: [(synced, 40), (lost, 50)], index: index, lastSeq: 60, now: 1200 * Self.second)
                == [
                    TimeCorrection(
                        boot: boot, monotonic: (1000 * Self.second)..<(1200 * Self.second), seqs: 51...60,
                        offset: 898 * Self.second + 100 * Self.second, isClosed: false)
                ])
    }
}
