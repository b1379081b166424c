/// When the journal commits, without I/O: the one place that decides between a commit now, one
/// after a delay, one right after the commit under way, or none.
///
/// Critical events are committed at once; telemetry waits for one commit per `commitWindow` (a
/// burst costs one write, the SD card lives longer), unless a burst fills memory first; a moved
/// cursor is written seldom (it only spares re-sending after a crash); a failed write is retried
/// at its own pace. One commit runs at a time: asking during one makes it go round once more.
/// The journal performs the decisions (`Decision.commitAfter` is a timer of its own) and says
/// when a pass starts and how it ended.
public struct CommitScheduler: Sendable, Equatable {
    /// What the journal should do about committing, after an append, a moved cursor or a failed pass.
    public enum Decision: Sendable, Equatable {
        /// Nothing to start: a commit is already due (timer set, or the one under way goes round again).
        case none
        /// Commit now (the caller waits for it, or starts it in a task).
        case commitNow
        /// Set a timer: commit after this long.
        case commitAfter(Duration)
    }

    /// What a request to commit does.
    public enum Start: Sendable, Equatable {
        /// Run the commit loop: no other is under way.
        case run
        /// One is under way and goes round once more: wait for it to end.
        case join
    }

    /// How a pass of the commit loop ended.
    public enum Outcome: Sendable, Equatable {
        /// Written; `moreWaiting`: it took a full batch and more is pending.
        case committed(moreWaiting: Bool)
        /// The write failed: the events stay in memory.
        case failed
    }

    /// A change of the card's state worth a log line.
    public enum Transition: Sendable, Equatable {
        case none
        case startedFailing
        case writableAgain
    }

    /// How long telemetry may wait in memory for its commit; zero: every append commits.
    public let commitWindow: Duration
    /// How long an acknowledged cursor may stay in memory only.
    public let cursorInterval: Duration
    /// The least time between two attempts while writes fail.
    public let failureRetry: Duration
    /// Whether a commit loop is under way.
    public private(set) var committing = false
    /// Whether the last write failed (and the next is retried at `failureRetry`'s pace).
    public private(set) var writeFailing = false
    /// Whether the commit under way goes round once more before it ends.
    public private(set) var goesRoundAgain = false
    /// Whether a timer for a commit is set: another is never set beside it.
    public private(set) var timerSet = false

    /// An idle scheduler: no commit under way, no timer set, writes not failing.
    /// - Parameters:
    ///   - commitWindow: how long telemetry may wait for its commit; zero commits every append.
    ///   - cursorInterval: how long a moved cursor may wait for its commit (never less than `commitWindow`).
    ///   - failureRetry: the least time between attempts while writes fail (never less than `commitWindow`).
    public init(commitWindow: Duration, cursorInterval: Duration, failureRetry: Duration) {
        self.commitWindow = commitWindow
        self.cursorInterval = cursorInterval
        self.failureRetry = failureRetry
    }

    /// Events were appended.
    /// - Parameters:
    ///   - critical: whether any of them is critical.
    ///   - burst: whether memory holds enough to commit early (the journal's thresholds).
    public mutating func appended(critical: Bool, burst: Bool) -> Decision {
        // Not while the card refuses writes: the retry has its own pace.
        let burst = burst && !writeFailing
        if burst && !critical && committing {
            // The next commit follows the one under way at once (no task per append meanwhile).
            goesRoundAgain = true
            return .none
        }
        if critical || commitWindow == .zero || burst { return .commitNow }
        return commit(after: commitWindow)
    }

    /// A sink's acknowledged cursor moved.
    public mutating func cursorsMoved() -> Decision {
        commit(after: max(commitWindow, cursorInterval))
    }

    /// Someone asks for a commit (a timer, an append, `flush()`).
    public mutating func commitRequested() -> Start {
        if committing {
            goesRoundAgain = true
            return .join
        }
        committing = true
        return .run
    }

    /// A pass of the commit loop begins: it commits whatever a timer or a request was for.
    public mutating func passStarting() {
        goesRoundAgain = false
        timerSet = false
    }

    /// A pass ended.
    /// - Parameter outcome: what the pass did.
    /// - Returns: a commit to schedule (only after a failure: a committed pass that left more
    ///   waiting goes round in the same loop instead), and the card's change of state.
    public mutating func passEnded(_ outcome: Outcome) -> (Decision, Transition) {
        switch outcome {
        case .committed(let moreWaiting):
            // The rest follows in the same loop, batch after batch.
            if moreWaiting { goesRoundAgain = true }
            defer { writeFailing = false }
            return (.none, writeFailing ? .writableAgain : .none)
        case .failed:
            defer { writeFailing = true }
            return (commit(after: max(commitWindow, failureRetry)), writeFailing ? .none : .startedFailing)
        }
    }

    /// The commit loop ended (it did not go round again): the next request runs a new one.
    public mutating func loopEnded() {
        committing = false
    }

    private mutating func commit(after delay: Duration) -> Decision {
        guard !timerSet else { return .none }
        timerSet = true
        return .commitAfter(delay)
    }
}
