import Testing
import WiregateCore

/// `SinkCursor` against a reference model, with random sequences of hand-outs, acknowledgements in
/// any order, give-backs (a lost connection, a refusal), re-sends, coalesced rows and restarts.
@Suite struct SinkCursorModelTests {
    /// What the model knows of each event.
    enum Fate: Equatable {
        case sent, returned, acknowledged
    }

    /// Thousands of sequences, about 300 steps each, every run (a few seconds on its own thread).
    @Test func neverPassesAnUnacknowledgedEvent() async {
        await checkModel("SinkCursor", seeds: SeededGenerator.seeds(count: 2000), Self.run)
    }

    /// One seeded sequence against the model; throws the first broken invariant.
    @Sendable static func run(seed: UInt64) throws(ModelViolation) {
        var random = SeededGenerator(seed: seed)
        var cursor = SinkCursor()
        var fates: [Int64: Fate] = [:]
        /// Given back, in the order the journal's buffer holds them (prepended, so newest give-back first).
        var buffer: [Int64] = []
        var nextSeq: Int64 = 1
        var stored: Int64 = 0
        for step in 0..<300 {
            let before = cursor.acknowledged
            var restarted = false
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<35:
                // Hand out: what was given back comes first, then new rows (some coalesced away).
                if let seq = buffer.first {
                    buffer.removeFirst()
                    cursor.handOut(seq)
                    fates[seq] = .sent
                } else {
                    nextSeq += Int64.random(in: 0...2, using: &random)
                    cursor.handOut(nextSeq)
                    fates[nextSeq] = .sent
                    nextSeq += 1
                }
            case 35..<75:
                // An acknowledgement, for any event in flight, in any order; sometimes a repeat or a stranger.
                let sent = fates.filter { $0.value == .sent }.map(\.key).sorted()
                let seq = sent.randomElement(using: &random) ?? Int64.random(in: 1...max(1, nextSeq), using: &random)
                cursor.acknowledge(seq)
                if fates[seq] == .sent { fates[seq] = .acknowledged }
            case 75..<88:
                // A give-back: the connection went, or the broker refused it for now.
                let sent = fates.filter { $0.value == .sent }.map(\.key).sorted()
                guard let seq = sent.randomElement(using: &random) else { break }
                cursor.giveBack(seq)
                fates[seq] = .returned
                buffer.insert(seq, at: 0)
            case 88..<95:
                // A flush: the cursor reaches the disk.
                stored = cursor.acknowledged
            default:
                // A restart: everything after the stored cursor is read again from the journal.
                restarted = true
                cursor = SinkCursor(acknowledged: stored)
                fates = fates.filter { $0.key <= stored }
                buffer.removeAll()
                nextSeq = stored + 1
            }
            // Never past an event that was handed out and not acknowledged.
            let open = fates.filter { $0.value != .acknowledged }.map(\.key)
            try require(
                open.allSatisfy { $0 > cursor.acknowledged },
                "step \(step): the cursor \(cursor.acknowledged) passed one of \(open.sorted())")
            // It moves only forward (a restart goes back to what was stored), only onto an acknowledged event.
            try require(
                restarted ? cursor.acknowledged == stored : cursor.acknowledged >= before,
                "step \(step): the cursor went from \(before) to \(cursor.acknowledged) (stored \(stored), restarted \(restarted))"
            )
            if !restarted && cursor.acknowledged != before {
                try require(
                    fates[cursor.acknowledged] == .acknowledged,
                    "step \(step): the cursor stopped on \(cursor.acknowledged), not acknowledged")
            }
            try require(
                cursor.unacknowledgedCount == open.count,
                "step \(step): \(cursor.unacknowledgedCount) unacknowledged, the model has \(open.count)")
            try require(
                open.allSatisfy { cursor.isAwaiting($0) == (fates[$0] == .sent) },
                "step \(step): the cursor awaits other events than the model's \(fates.filter { $0.value == .sent }.keys.sorted())"
            )
            // What is behind the cursor can no longer matter: keep the model as small as the cursor's state.
            if cursor.acknowledged != before { fates = fates.filter { $0.key >= cursor.acknowledged } }
        }
    }

    @Test func acknowledgementsOutOfOrderMoveTheCursorOnlyOverAnUnbrokenRun() {
        var cursor = SinkCursor(acknowledged: 10)
        for seq in Int64(11)...15 { cursor.handOut(seq) }
        var moved = cursor.acknowledge(12)
        #expect(!moved && cursor.acknowledged == 10)
        cursor.giveBack(11)
        moved = cursor.acknowledge(13)
        #expect(!moved && cursor.acknowledged == 10, "a given-back event holds the cursor")
        cursor.handOut(11)
        moved = cursor.acknowledge(11)
        #expect(moved && cursor.acknowledged == 13)
        moved = cursor.acknowledge(11)
        #expect(!moved, "a repeated acknowledgement changes nothing")
        #expect(cursor.unacknowledgedCount == 2)
    }

    @Test func readingNeverGoesBackwards() {
        var cursor = SinkCursor(acknowledged: 5)
        #expect(cursor.position == 5)
        cursor.read(through: 40)
        cursor.read(through: 20)
        #expect(cursor.position == 40)
    }
}
