import Testing
import WiregateCore

/// `InFlightWindow` against a reference model: message ids that wrap (a tiny id space, so that
/// reuse happens in every run), PUBACKs in any order, refused, repeated and for unknown ids.
@Suite struct InFlightWindowModelTests {
    @Test(arguments: SeededGenerator.seeds(count: 200))
    func everyEventEndsExactlyOnceAndOnlyByItsOwnAnswer(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var window = InFlightWindow<Int>(limit: 8)
        /// The model: which event each id stands for right now.
        var model: [Int32: Int?] = [:]
        var lastMid: Int32 = 0
        var nextEvent = 0
        var acknowledged: [Int] = [], refused: [Int] = [], resent: [Int] = []
        var unknown = 0
        for step in 0..<400 {
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<45 where window.room > 0:
                // libmosquitto's ids go 1...N and wrap, never 0; N = 12 here, so they are reused.
                lastMid = lastMid % 12 + 1
                let event: Int? = Int.random(in: 0..<10, using: &random) == 0 ? nil : nextEvent
                nextEvent += 1
                let displaced = window.sent(mid: lastMid, item: event)
                let expected = model.updateValue(event, forKey: lastMid) ?? nil
                #expect(displaced == expected, "seed \(seed), step \(step)")
                if let displaced { resent.append(displaced) }
            case 45..<85:
                let known = Int.random(in: 0..<5, using: &random) > 0
                let mid = known ? (model.keys.sorted().randomElement(using: &random) ?? 1) : Int32.random(in: 1...12, using: &random)
                let code: Int32 = [0, 0, 0, 0x10, 0x87, 0x90, 0x97, 0x99].randomElement(using: &random)!
                let answer = window.answered(mid: mid, reasonCode: code)
                if let entry = model.removeValue(forKey: mid) {
                    let verdict = PubackVerdict(reasonCode: code)
                    #expect(answer == (verdict == .accepted ? .accepted : .refused(verdict)), "seed \(seed), step \(step)")
                    if let event = entry { verdict == .accepted ? acknowledged.append(event) : refused.append(event) }
                } else {
                    unknown += 1
                    #expect(answer == .unknown, "seed \(seed), step \(step)")
                }
            default:
                // The sink drains what was answered.
                let taken = window.takeAcknowledged()
                #expect(taken == acknowledged, "seed \(seed), step \(step)")
                acknowledged.removeAll()
                let takenRefused = window.takeRefused().map(\.item)
                #expect(takenRefused == refused, "seed \(seed), step \(step)")
                refused.removeAll()
            }
            #expect(window.inFlight == model.count, "seed \(seed), step \(step)")
            #expect(window.unknownCount == unknown, "seed \(seed), step \(step)")
        }
        // Every event is in exactly one place: in flight, answered, or handed back to be sent again.
        let everything = window.takeAcknowledged() + window.takeRefused().map(\.item) + resent + model.values.compactMap { $0 }
        #expect(Set(everything).count == everything.count, "seed \(seed): an event ended twice")
    }

    @Test func aLateAnswerForAReusedIdIsNeverKeptForLater() {
        var window = InFlightWindow<String>(limit: 4)
        // A PUBACK that comes for an id nothing awaits is ignored, not remembered...
        var answer = window.answered(mid: 7, reasonCode: 0)
        #expect(answer == .unknown)
        // ...so the next message given that id is not taken as acknowledged by it.
        let displaced = window.sent(mid: 7, item: "door=open")
        #expect(displaced == nil)
        var taken = window.takeAcknowledged()
        #expect(taken.isEmpty && window.inFlight == 1)
        answer = window.answered(mid: 7, reasonCode: 0)
        #expect(answer == .accepted)
        taken = window.takeAcknowledged()
        #expect(taken == ["door=open"])
    }

    @Test(arguments: [
        (Int32(0x00), PubackVerdict.accepted),
        (0x10, .accepted),
        (0x87, .refusedForNow(reason: "not authorised (0x87): check the broker's ACL for this gateway's topics")),
        (0x97, .refusedForNow(reason: "quota exceeded (0x97)")),
        (0x90, .refusedForGood(reason: "topic name invalid (0x90)")),
        (0x99, .refusedForGood(reason: "payload format invalid (0x99)")),
    ])
    func reasonCodes(code: Int32, verdict: PubackVerdict) {
        #expect(PubackVerdict(reasonCode: code) == verdict)
    }
}
