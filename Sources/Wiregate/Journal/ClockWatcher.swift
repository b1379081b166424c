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
    private let synchronised: @Sendable () -> Bool
    private let logger: Logger

    /// - Parameters:
    ///   - journal: where the anchors go.
    ///   - periodic: how often an anchor is written while synchronised; 5 minutes by default.
    ///   - synchronised: whether the wall clock is synchronised now (`SystemClock` by default).
    public init(
        journal: Journal, periodic: Duration = .seconds(300),
        synchronised: @escaping @Sendable () -> Bool = SystemClock.isSynchronised, logger: Logger
    ) {
        self.journal = journal
        self.periodic = periodic
        self.synchronised = synchronised
        self.logger = logger
    }

    /// Watches until graceful shutdown.
    public func run() async {
        let boot: String
        do {
            boot = try BootClock.bootID()
        } catch {
            logger.error("no boot id: the times of this run cannot be repaired", metadata: ["error": "\(error)"])
            try? await gracefulShutdown()
            return
        }
        let startedSynced = synchronised()
        await journal.recordAnchor(BootClock.anchor(boot: boot, synchronised: startedSynced), reason: .start)
        let steps = ClockSteps.open(logger: logger)
        await withTaskGroup(of: Void.self) { group in
            if let steps {
                group.addTask {
                    for await _ in steps.changes {
                        let anchor = BootClock.anchor(boot: boot, synchronised: self.synchronised())
                        self.logger.notice(
                            "the wall clock was set", metadata: ["synchronised": "\(anchor.synchronised)"])
                        await self.journal.recordAnchor(anchor, reason: .step)
                    }
                }
            }
            group.addTask {
                var synced = startedSynced
                var last = BootClock.anchor(boot: boot, synchronised: synced)
                var lastWritten = ContinuousClock.now
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    let now = self.synchronised()
                    let anchor = BootClock.anchor(boot: boot, synchronised: now)
                    // Without a timerfd: a jump between the two clocks of over a second is a step.
                    let drift = (anchor.wall - last.wall) - (anchor.monotonic - last.monotonic)
                    last = anchor
                    if now != synced {
                        synced = now
                        await self.journal.recordAnchor(anchor, reason: now ? .synchronised : .unsynchronised)
                        lastWritten = ContinuousClock.now
                    } else if steps == nil, abs(drift) > 1_000_000_000 {
                        await self.journal.recordAnchor(anchor, reason: .step)
                    } else if now, ContinuousClock.now - lastWritten >= self.periodic {
                        await self.journal.recordAnchor(anchor, reason: .periodic)
                        lastWritten = ContinuousClock.now
                    }
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        steps?.close()
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
