import CTimex
import Dispatch
import Foundation
import Glibc
import Logging
import ServiceLifecycle
import Synchronization
import WiregateCore

/// Writes the journal's clock anchors (see `ClockAnchor`): at the start, at every clock step the
/// kernel reports, when the clock becomes (or stops being) synchronised, and every `periodic`
/// while it is. With them, every event of a boot that began unsynchronised gets its true time
/// once that boot's clock is set.
///
/// The steps come from a timerfd armed far in the future with `TFD_TIMER_CANCEL_ON_SET`: the
/// kernel cancels it, and a read of it fails with ECANCELED, whenever the wall clock is set
/// (NTP's step, `date -s`, timesyncd's restore of the saved time). It is read on a dispatch
/// source, never on the concurrency pool. Without a timerfd (a seccomp profile that refuses it)
/// the steps are still seen as jumps between the two clocks, checked every second.
public final class ClockWatcher: Service, Sendable {
    private let journal: Journal
    private let periodic: Duration
    private let time: TimeSource
    private let correctionsTopic: String
    private let logger: Logger
    /// Set by a step the kernel reported, so that the comparison of the clocks does not record it again.
    private let stepReported = Atomic<Bool>(false)

    /// - Parameters:
    ///   - journal: where the anchors go, and the correction records.
    ///   - periodic: how often an anchor is written while synchronised; 5 minutes by default.
    ///   - time: the clocks (the machine's, but for tests).
    ///   - correctionsTopic: the topic of the correction records (`<base>/<gateway>/time/corrections`).
    public init(
        journal: Journal, periodic: Duration = .seconds(300), time: TimeSource = .system, correctionsTopic: String,
        logger: Logger
    ) {
        self.journal = journal
        self.periodic = periodic
        self.time = time
        self.correctionsTopic = correctionsTopic
        self.logger = logger
    }

    /// Watches until graceful shutdown.
    public func run() async {
        // The start's anchor is the journal's, written as it opened (before any event was numbered).
        guard let boot = time.boot, let first = await journal.startAnchor else {
            logger.error("no boot id (/proc/sys/kernel/random/boot_id): the times of this run cannot be repaired")
            try? await gracefulShutdown()
            return
        }
        await journal.writeStartAnchorIfUnwritten()
        // Synchronised already (a restart): what an earlier run of this boot recorded unsynchronised.
        if first.synchronised { await correct() }
        let steps = time.kernelSteps ? ClockSteps.open(logger: logger) : nil
        await withTaskGroup(of: Void.self) { group in
            if let steps {
                group.addTask {
                    for await _ in steps.changes {
                        self.stepReported.store(true, ordering: .relaxed)
                        self.logger.notice("the wall clock was set")
                        await self.record(.step)
                    }
                }
            }
            group.addTask {
                var last = first
                var lastWritten = ContinuousClock.now
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    let anchor = self.time.anchor(boot: boot)
                    // A jump between the two clocks of over a second is a step: the only sign of one
                    // without a timerfd, and a check that the timerfd missed none.
                    let drift = (anchor.wall - last.wall) - (anchor.monotonic - last.monotonic)
                    let reported = self.stepReported.exchange(false, ordering: .relaxed)
                    defer { last = anchor }
                    if anchor.synchronised != last.synchronised {
                        await self.record(anchor.synchronised ? .synchronised : .unsynchronised)
                        lastWritten = ContinuousClock.now
                    } else if abs(drift) > 1_000_000_000, !reported {
                        self.logger.notice(
                            "the wall clock jumped", metadata: ["seconds": "\(Double(drift) / 1e9)"])
                        await self.record(.step)
                    } else if anchor.synchronised, ContinuousClock.now - lastWritten >= self.periodic {
                        await self.record(.periodic)
                        lastWritten = ContinuousClock.now
                    }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        steps?.close()
    }

    /// Records an anchor (read by the journal, where events are numbered); a synchronised one
    /// may repair stretches recorded before it.
    private func record(_ reason: AnchorReason) async {
        guard let anchor = await journal.recordAnchor(reason: reason), anchor.synchronised else { return }
        await correct()
    }

    /// Journals the correction records that the synchronised anchors make possible now.
    private func correct() async {
        for correction in await journal.journalCorrections(topic: correctionsTopic) {
            logger.notice(
                "times of events recorded with a wrong clock are known now",
                metadata: [
                    "boot": "\(correction.boot)", "seqs": "\(correction.seqs)",
                    "offset_seconds": "\(Double(correction.offset) / 1e9)"
                ])
        }
    }
}

/// The timerfd that the kernel cancels at every set of the wall clock, as a stream of steps.
final class ClockSteps: @unchecked Sendable {
    let changes: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let fd: CInt
    private let source: any DispatchSourceRead
    private let queue = DispatchQueue(label: "wiregate.clock-steps")

    /// The timerfd armed, or nil (logged) when the kernel or a seccomp profile refuses it.
    static func open(logger: Logger) -> ClockSteps? {
        let fd = timerfd_create(CLOCK_REALTIME, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        guard fd >= 0 else {
            logger.warning(
                "no timerfd: clock steps are seen by comparing the clocks every second",
                metadata: ["errno": "\(errno)"])
            return nil
        }
        guard arm(fd) else {
            logger.warning("cannot arm the timerfd for clock steps", metadata: ["errno": "\(errno)"])
            Glibc.close(fd)
            return nil
        }
        return ClockSteps(fd: fd)
    }

    /// Armed at the far future, absolute, cancelled on a set of the clock.
    private static func arm(_ fd: CInt) -> Bool {
        var value = itimerspec()
        // 9999-12-31: never reached (the kernel takes any time before 2262).
        value.it_value.tv_sec = 253_402_300_799
        return timerfd_settime(fd, Int32(TFD_TIMER_ABSTIME) | Int32(TFD_TIMER_CANCEL_ON_SET), &value, nil) == 0
    }

    private init(fd: CInt) {
        self.fd = fd
        (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        let continuation = continuation
        source.setEventHandler {
            var expirations: UInt64 = 0
            // ECANCELED: the clock was set. The timer must be armed again to hear the next one.
            if read(fd, &expirations, 8) < 0, errno == ECANCELED {
                continuation.yield()
                _ = Self.arm(fd)
            }
        }
        source.setCancelHandler { Glibc.close(fd) }
        source.resume()
    }

    func close() {
        continuation.finish()
        source.cancel()
    }
}
