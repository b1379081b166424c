import Testing

@testable import WiregateCore

@Suite struct CommitSchedulerTests {
    func scheduler(window: Duration = .seconds(2)) -> CommitScheduler {
        CommitScheduler(commitWindow: window, cursorInterval: .seconds(5), failureRetry: .seconds(1))
    }

    @Test func criticalCommitsNowTelemetryWaitsForOneTimerPerWindow() {
        var s = scheduler()
        #expect(s.appended(critical: true, burst: false) == .commitNow)
        #expect(s.appended(critical: false, burst: false) == .commitAfter(.seconds(2)))
        #expect(s.appended(critical: false, burst: false) == .none, "one timer at a time")
        #expect(s.commitRequested() == .run)
        s.passStarting()
        #expect(!s.timerSet, "the pass commits what the timer was for")
        #expect(s.appended(critical: false, burst: false) == .commitAfter(.seconds(2)))
    }

    @Test func withoutAWindowEveryAppendCommits() {
        var s = scheduler(window: .zero)
        #expect(s.appended(critical: false, burst: false) == .commitNow)
    }

    @Test func aBurstCommitsNowOrRightAfterTheCommitUnderWay() {
        var s = scheduler()
        #expect(s.appended(critical: false, burst: true) == .commitNow)
        #expect(s.commitRequested() == .run)
        s.passStarting()
        #expect(s.appended(critical: false, burst: true) == .none)
        #expect(s.goesRoundAgain)
        // A critical event during a commit still asks for its own (it waits on it).
        #expect(s.appended(critical: true, burst: true) == .commitNow)
    }

    @Test func aRequestDuringACommitJoinsItAndMakesItGoRoundAgain() {
        var s = scheduler()
        #expect(s.commitRequested() == .run)
        s.passStarting()
        #expect(s.commitRequested() == .join)
        #expect(s.goesRoundAgain)
        s.passStarting()
        _ = s.passEnded(.committed(moreWaiting: false))
        #expect(!s.goesRoundAgain)
        s.loopEnded()
        #expect(!s.committing)
        #expect(s.commitRequested() == .run)
    }

    @Test func aFullBatchWithMoreWaitingGoesRoundAgain() {
        var s = scheduler()
        _ = s.commitRequested()
        s.passStarting()
        #expect(s.passEnded(.committed(moreWaiting: true)) == (.none, .none))
        #expect(s.goesRoundAgain)
    }

    @Test func cursorsAreWrittenSeldom() {
        var s = scheduler()
        #expect(s.cursorsMoved() == .commitAfter(.seconds(5)))
        #expect(s.cursorsMoved() == .none)
        var long = scheduler(window: .seconds(30))
        #expect(long.cursorsMoved() == .commitAfter(.seconds(30)))
    }

    /// A failed write is retried at its own pace, said once, and a burst no longer commits early
    /// while it lasts; the first success says so and ends it.
    @Test func failuresAreRetriedAtTheirOwnPaceAndSaidOnce() {
        var s = scheduler(window: .milliseconds(100))
        _ = s.commitRequested()
        s.passStarting()
        #expect(s.passEnded(.failed) == (.commitAfter(.seconds(1)), .startedFailing))
        #expect(s.writeFailing)
        s.loopEnded()
        #expect(s.appended(critical: false, burst: true) == .none, "the retry's timer is set; no early commit")
        _ = s.commitRequested()
        s.passStarting()
        #expect(s.passEnded(.failed) == (.commitAfter(.seconds(1)), .none))
        s.loopEnded()
        _ = s.commitRequested()
        s.passStarting()
        #expect(s.passEnded(.committed(moreWaiting: false)) == (.none, .writableAgain))
        #expect(!s.writeFailing)
        #expect(s.passEnded(.committed(moreWaiting: false)) == (.none, .none))
    }

    /// Random sequences against a model of what must hold: at most one timer; a request runs a
    /// loop only when none is under way; a critical append always commits now; an append that
    /// starts nothing always has a commit due.
    @Test(arguments: 0..<200) func randomSequencesKeepTheInvariants(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        var s = scheduler(window: [Duration.zero, .seconds(2)][Int(seed % 2)])
        var timers = 0, loopRunning = false, inPass = false
        for _ in 0..<80 {
            switch Int.random(in: 0..<7, using: &rng) {
            case 0, 1:
                let critical = Bool.random(using: &rng)
                let decision = s.appended(critical: critical, burst: Bool.random(using: &rng))
                if critical { #expect(decision == .commitNow) }
                if case .commitAfter = decision { timers += 1 }
                // What matters: appended telemetry always has a commit coming (now, a timer, or
                // the loop under way going round or running a pass that takes it).
                if decision == .none { #expect(s.timerSet || s.committing, "telemetry with no commit due") }
            case 2:
                if case .commitAfter = s.cursorsMoved() { timers += 1 }
            case 3:
                let start = s.commitRequested()
                #expect(start == (loopRunning ? .join : .run))
                loopRunning = true
            case 4 where loopRunning && !inPass:
                s.passStarting()
                timers = 0  // what they were set for is being committed
                inPass = true
            case 5 where inPass:
                let (decision, _) = s.passEnded(
                    Bool.random(using: &rng) ? .failed : .committed(moreWaiting: Bool.random(using: &rng)))
                if case .commitAfter = decision { timers += 1 }
                inPass = false
            case 6 where loopRunning && !inPass && !s.goesRoundAgain:
                s.loopEnded()
                loopRunning = false
            default:
                break
            }
            #expect(timers <= 1, "two timers set at once")
            #expect(s.timerSet == (timers == 1))
            #expect(s.committing == loopRunning)
        }
    }
}
