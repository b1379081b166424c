import Testing
import WiregateCore

/// `InFlightWindow` against a reference model: message ids that wrap (a tiny id space, so that
/// reuse happens in every run), PUBACKs in any order, refused, repeated and for unknown ids.
@Suite struct InFlightWindowModelTests {
    /// Thousands of sequences, 400 steps each, every run (a few seconds on its own thread).
    @Test func everyEventEndsExactlyOnceAndOnlyByItsOwnAnswer() async {
        await checkModel("InFlightWindow", seeds: SeededGenerator.seeds(count: 2000), Self.run)
    }

    /// The shutdown summary once said acknowledged=317 published=313: status messages' PUBACKs
    /// were counted with the events'. They are counted apart.
    @Test func statusAnswersAreCountedApartFromEvents() {
        var window = InFlightWindow<Int>(limit: 8)
        _ = window.sent(mid: 1, item: 10)
        _ = window.sent(mid: 2, item: nil)
        _ = window.sent(mid: 3, item: nil)
        for mid: Int32 in 1...3 { #expect(window.answered(mid: mid, reasonCode: 0) == .accepted) }
        #expect(window.acknowledgedCount == 1)
        #expect(window.acknowledgedStatusCount == 2)
        #expect(window.takeAcknowledged() == [10])
    }

    /// One seeded sequence against the model; throws the first broken invariant.
    @Sendable static func run(seed: UInt64) throws(ModelViolation) {
        var random = SeededGenerator(seed: seed)
        // Even events are ordinary (telemetry): the window counts them apart.
        var window = InFlightWindow<Int>(limit: 8) { $0 % 2 == 0 }
        /// The model: which event each id stands for right now.
        var model: [Int32: Int?] = [:]
        var lastMid: Int32 = 0
        var nextEvent = 0
        var acknowledged: [Int] = [], refused: [Int] = [], resent: [Int] = []
        var unknown = 0
        var poisoned: [Int32: Int] = [:]
        for step in 0..<400 {
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<45 where window.room > 0:
                // libmosquitto's ids go 1...N and wrap, never 0; N = 12 here, so they are reused.
                lastMid = lastMid % 12 + 1
                let event: Int? = Int.random(in: 0..<10, using: &random) == 0 ? nil : nextEvent
                nextEvent += 1
                let resend = window.sent(mid: lastMid, item: event)
                if let held = model.removeValue(forKey: lastMid) {
                    // Reused while held: neither answer can be told apart; both events go back.
                    try require(
                        resend == [held, event].compactMap { $0 },
                        "step \(step): id \(lastMid) reused while held, handed back \(resend)")
                    poisoned[lastMid, default: 0] += 2
                } else {
                    try require(resend.isEmpty, "step \(step): a fresh id \(lastMid) handed back \(resend)")
                    model[lastMid] = event
                }
                resent += resend
            case 45..<85:
                let known = Int.random(in: 0..<5, using: &random) > 0
                let mid =
                    known
                    ? (model.keys.sorted().randomElement(using: &random) ?? 1)
                    : Int32.random(in: 1...12, using: &random)
                let code: Int32 = [0, 0, 0, 0x10, 0x87, 0x90, 0x97, 0x99].randomElement(using: &random)!
                let answer = window.answered(mid: mid, reasonCode: code)
                if let left = poisoned[mid] {
                    poisoned[mid] = left > 1 ? left - 1 : nil
                    unknown += 1
                    try require(answer == .unknown, "step \(step): the answer for id \(mid) was \(answer), not unknown")
                } else if let entry = model.removeValue(forKey: mid) {
                    let verdict = PubackVerdict(reasonCode: code)
                    try require(
                        answer == (verdict == .accepted ? .accepted : .refused(verdict)),
                        "step \(step): reason 0x\(String(code, radix: 16)) for id \(mid) answered \(answer)")
                    if let event = entry { verdict == .accepted ? acknowledged.append(event) : refused.append(event) }
                } else {
                    unknown += 1
                    try require(answer == .unknown, "step \(step): the answer for id \(mid) was \(answer), not unknown")
                }
            default:
                // The sink drains what was answered.
                let taken = window.takeAcknowledged()
                try require(
                    taken == acknowledged, "step \(step): took \(taken) as acknowledged, the model \(acknowledged)")
                acknowledged.removeAll()
                let takenRefused = window.takeRefused().map(\.item)
                try require(
                    takenRefused == refused, "step \(step): took \(takenRefused) as refused, the model \(refused)")
                refused.removeAll()
            }
            try require(
                window.inFlight == model.count,
                "step \(step): \(window.inFlight) in flight, the model has \(model.count)")
            try require(
                window.ordinaryInFlight == model.values.compactMap { $0 }.filter { $0 % 2 == 0 }.count,
                "step \(step): \(window.ordinaryInFlight) ordinary in flight, not the model's")
            // Status messages (nil items) in flight: what telemetry's share and a paced burst count.
            try require(
                window.statusInFlight == model.values.filter { $0 == nil }.count,
                "step \(step): \(window.statusInFlight) status messages in flight, not the model's")
            try require(
                window.unknownCount == unknown,
                "step \(step): \(window.unknownCount) unknown answers counted, the model has \(unknown)")
        }
        // Every event is in exactly one place: in flight, answered, or handed back to be sent again.
        let everything =
            window.takeAcknowledged() + window.takeRefused().map(\.item) + resent + model.values.compactMap { $0 }
        try require(Set(everything).count == everything.count, "an event ended twice")
    }

    @Test func aLateAnswerForAReusedIdIsNeverKeptForLater() {
        var window = InFlightWindow<String>(limit: 4)
        // A PUBACK that comes for an id nothing awaits is ignored, not remembered...
        var answer = window.answered(mid: 7, reasonCode: 0)
        #expect(answer == .unknown)
        // ...so the next message given that id is not taken as acknowledged by it.
        let resend = window.sent(mid: 7, item: "door=open")
        #expect(resend.isEmpty)
        var taken = window.takeAcknowledged()
        #expect(taken.isEmpty && window.inFlight == 1)
        answer = window.answered(mid: 7, reasonCode: 0)
        #expect(answer == .accepted)
        taken = window.takeAcknowledged()
        #expect(taken == ["door=open"])
    }

    /// An id given out again while its first message is unanswered: libmosquitto would match the
    /// next PUBACK to the older message, so it must not acknowledge the newer event.
    @Test func anIdReusedWhileHeldAcknowledgesNeither() {
        var window = InFlightWindow<String>(limit: 4)
        var resend = window.sent(mid: 3, item: "old")
        #expect(resend.isEmpty)
        resend = window.sent(mid: 3, item: "new")
        #expect(resend == ["old", "new"])
        var answers = [window.answered(mid: 3, reasonCode: 0)]
        answers.append(window.answered(mid: 3, reasonCode: 0))
        #expect(answers == [.unknown, .unknown])
        let taken = window.takeAcknowledged()
        #expect(taken.isEmpty && window.inFlight == 0)
        resend = window.sent(mid: 3, item: "later")
        let answer = window.answered(mid: 3, reasonCode: 0)
        #expect(resend.isEmpty && answer == .accepted)
    }
}
