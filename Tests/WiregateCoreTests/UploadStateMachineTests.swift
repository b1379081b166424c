import Testing

@testable import WiregateCore

@Suite struct UploadStateMachineTests {
    typealias Machine = UploadStateMachine<Int>
    let t0 = ContinuousClock.now

    func machine(batchSize: Int = 8, compress: Bool = true, maxRate: Int? = nil) -> Machine {
        Machine(batchSize: batchSize, compress: compress, retryMax: .seconds(30), maxRate: maxRate, start: t0)
    }

    func acknowledged(_ actions: [Machine.Action]) -> [Int] {
        actions.flatMap { action -> [Int] in if case .acknowledge(let items) = action { items } else { [] } }
    }

    func waits(_ actions: [Machine.Action]) -> [Duration] {
        actions.compactMap { action -> Duration? in if case .wait(let d) = action { d } else { nil } }
    }

    @Test func criticalGoesAloneAndLiveTelemetryLingersOnce() {
        let m = machine()
        #expect(m.shape([.critical, .critical, .telemetry]) == .send(count: 2))
        #expect(m.shape([.critical]) == .send(count: 1), "a lone alarm never lingers")
        #expect(m.shape([.telemetry, .telemetry]) == .linger)
        #expect(m.shape([.telemetry, .telemetry], lingered: true) == .send(count: 2))
        #expect(m.shape([.telemetry, .critical], lingered: true) == .send(count: 1))
        #expect(m.shape(Array(repeating: .telemetry, count: 8)) == .send(count: 8), "a full batch goes at once")
    }

    @Test func aStoredBatchIsAcknowledgedAndTheFirstSuccessSaysReachable() {
        var m = machine()
        m.begin([1, 2, 3])
        let actions = m.answered(.stored, acceptsGzip: nil, sentGzipped: false)
        #expect(acknowledged(actions) == [1, 2, 3])
        #expect(actions.contains { if case .reachable(again: false) = $0 { true } else { false } })
        #expect(m.part == nil)
        m.begin([4])
        #expect(
            m.answered(.stored, acceptsGzip: nil, sentGzipped: false).count == 1, "reachable said once, not per batch")
    }

    /// A refusal halves the batch until the bad event is alone; it alone is quarantined, and its
    /// neighbours are acknowledged, in order.
    @Test func aRefusedEventIsIsolatedAndTheRestArrivesInOrder() {
        var m = machine()
        m.begin(Array(1...8))
        var stored: [Int] = [], quarantined: [Int] = []
        while let part = m.part {
            let verdict: UploadVerdict = part.contains(6) ? .refused(status: 400, response: "bad") : .stored
            for action in m.answered(verdict, acceptsGzip: nil, sentGzipped: false) {
                if case .acknowledge(let items) = action { stored += items }
                if case .quarantine(let items, let status, _) = action { quarantined += items; #expect(status == 400) }
            }
        }
        #expect(stored == [1, 2, 3, 4, 5, 7, 8])
        #expect(quarantined == [6])
        #expect(m.batchLimit == 8, "a refusal is not a size limit")
    }

    @Test func a413LowersTheLimitForTheBatchesAfterAndALoneEventIsQuarantined() {
        var m = machine()
        m.begin(Array(1...8))
        #expect(
            m.answered(.tooLarge, acceptsGzip: nil, sentGzipped: false).contains {
                if case .smallerBatches(4) = $0 { true } else { false }
            })
        #expect(m.part == [1, 2, 3, 4])
        #expect(m.batchLimit == 4)
        var one = machine(batchSize: 1)
        one.begin([9])
        let actions = one.answered(.tooLarge, acceptsGzip: nil, sentGzipped: false)
        #expect(actions.contains { if case .quarantine([9], 413, _) = $0 { true } else { false } })
        #expect(one.part == nil)
    }

    /// Trouble is said once per kind, waits with a growing backoff (at least Retry-After), and
    /// keeps the same part; success starts the backoff over and says "again".
    @Test func troubleBacksOffSaysItOnceAndKeepsThePart() {
        var m = machine()
        var rng = SeededGenerator(seed: 5)
        m.begin([1, 2])
        let first = m.answered(
            .retry(reason: "timed out", after: nil), acceptsGzip: nil, sentGzipped: false, using: &rng)
        #expect(first.contains { if case .unreachable("timed out", misconfigured: false) = $0 { true } else { false } })
        let second = m.answered(
            .retry(reason: "timed out", after: .seconds(20)), acceptsGzip: nil, sentGzipped: false, using: &rng)
        #expect(second.count == 1, "said once")
        #expect(waits(second).first.map { $0 >= .seconds(20) } == true, "Retry-After honoured")
        let login = m.answered(
            .misconfigured(reason: "a login page"), acceptsGzip: nil, sentGzipped: false, using: &rng)
        #expect(
            login.contains { if case .unreachable("a login page", misconfigured: true) = $0 { true } else { false } })
        let grown = waits(login).first ?? .zero
        #expect(grown >= .seconds(2), "the backoff grew: \(grown)")
        #expect(m.part == [1, 2])
        let back = m.answered(.stored, acceptsGzip: nil, sentGzipped: false, using: &rng)
        #expect(back.contains { if case .reachable(again: true) = $0 { true } else { false } })
        m.begin([3])
        let fresh = m.answered(
            .retry(reason: "timed out", after: nil), acceptsGzip: nil, sentGzipped: false, using: &rng)
        #expect(waits(fresh).first.map { $0 <= .seconds(1) } == true, "the backoff started over")
    }

    @Test func gzipFollowsWhatTheBackendSaysAndA415IsResentPlain() {
        var m = machine()
        m.begin([1])
        #expect(!m.compress)
        _ = m.answered(.retry(reason: "503", after: nil), acceptsGzip: true, sentGzipped: false)
        #expect(m.compress)
        let refused = m.answered(.refused(status: 415, response: ""), acceptsGzip: false, sentGzipped: true)
        #expect(refused.count == 1 && m.part == [1] && !m.compress, "the same part again, plain, nothing quarantined")
        var off = machine(compress: false)
        off.begin([1])
        _ = off.answered(.stored, acceptsGzip: true, sentGzipped: false)
        #expect(!off.compress, "backend.compress: false is never overridden")
    }

    @Test func aBacklogIsPacedAtMaxRateWithASecondOfCreditAtMost() {
        var unpaced = machine()
        #expect(unpaced.batchDone(count: 100, now: t0) == nil)
        var m = machine(maxRate: 100)
        #expect(m.batchDone(count: 100, now: t0) == t0 + .seconds(1))
        #expect(m.batchDone(count: 50, now: t0 + .seconds(1)) == t0 + .seconds(1.5))
        // After a quiet minute, a second's credit, not a minute's.
        #expect(m.batchDone(count: 100, now: t0 + .seconds(60)) == t0 + .seconds(60))
    }

    /// Random answers: every event ends acknowledged or quarantined exactly once, in order, and
    /// only a refusal or a 413 of a lone event quarantines.
    @Test(arguments: 0..<200) func randomAnswersLoseNothingAndRepeatNothing(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        var m = machine(batchSize: 16)
        let batch = Array(0..<Int.random(in: 1...16, using: &rng))
        m.begin(batch)
        var done: [Int] = []
        var steps = 0
        while let part = m.part, steps < 1000 {
            steps += 1
            let verdicts: [UploadVerdict] = [
                .stored, .stored, .stored, .tooLarge, .refused(status: 422, response: "x"),
                .retry(reason: "r", after: nil), .misconfigured(reason: "m")
            ]
            let verdict = verdicts[Int.random(in: 0..<verdicts.count, using: &rng)]
            for action in m.answered(
                verdict, acceptsGzip: Bool.random(using: &rng) ? nil : Bool.random(using: &rng),
                sentGzipped: m.compress, using: &rng)
            {
                switch action {
                case .acknowledge(let items):
                    #expect(items == part)
                    done += items
                case .quarantine(let items, _, _):
                    #expect(items.count == 1 && items == part)
                    done += items
                default: break
                }
            }
        }
        #expect(done == batch, "seed \(seed)")
    }
}
