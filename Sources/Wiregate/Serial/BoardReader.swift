import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import WiregateCore

/// One board: opens its port, waits out its reset, reads and decodes its lines into
/// the outbox, writes commands to it, and reopens the port with backoff whenever it
/// goes away.
///
/// A board with a fixed `match.path` is reopened at that path until it exists again. A
/// board found through udev is opened at the node discovery attaches (`attach(node:)`),
/// closed at once when it is detached (unplugged), and opened again, under the same name
/// and with its counters going on, at whatever node it comes back.
///
/// Reads are driven by NIO's event loop (epoll): no thread per board, no polling.
public final class BoardReader: Service, Sendable {
    /// The board's settings: its name, how it is found, its baud rate, protocol and allow-list.
    public let board: GatewayConfig.Board
    private let builder: EventBuilder
    private let outbox: any EventOutbox
    /// Where the reader says the board is online (at a node) or offline: the board directory.
    private let reportStatus: @Sendable (_ online: Bool, _ node: String?) -> Void
    /// Sees each read's events before they are journaled, and says which are (the alarm's tap).
    private let tap: (@Sendable ([Event]) -> [Event])?
    /// The clocks a line's time is read from, as it is read.
    private let time: TimeSource
    /// Whether the board's lines may carry a secret (an alarm keypad's code): none is ever logged.
    private let linesAreSecret: Bool
    private let group: any EventLoopGroup
    private let logger: Logger
    /// The board's series in `/metrics` (the shared `adopted` ones for an adopted board).
    private let metrics: BoardMetrics
    private let state = Mutex(State())

    private struct State {
        var counters = BoardCounters()
        var writer: NIOAsyncChannelOutboundWriter<ByteBuffer>?
        /// Where the board is now: its fixed path, or the node discovery attached (nil: unplugged).
        var node: String?
        /// Resumed when `node` changes.
        var nodeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// Makes the reader; nothing is opened until `run()`.
    /// - Parameters:
    ///   - board: the board's settings, configured or made for an adopted board.
    ///   - config: the whole config, for the topic prefix of the events.
    ///   - outbox: where the decoded events go (the journal), without waiting for the disk.
    ///   - time: the clocks each line's time is read from.
    ///   - group: the event loops that read the port.
    ///   - logger: the reader logs with a `board` metadata key added.
    ///   - tap: sees each read's events first, on the reader's task, and returns those to journal
    ///     (the alarm panel's `tap`); it must never wait.
    ///   - metrics: what the reader counts for `/metrics`.
    ///   - reportStatus: called with `(true, node)` once the port is open and read, and with
    ///     `(false, nil)` after each session or failed attempt (the board directory's `report`),
    ///     and while the port is open, `(false, node)` when the board goes silent past its
    ///     `silence_timeout`, `(true, node)` at its next line.
    public init(
        board: GatewayConfig.Board, config: GatewayConfig, outbox: any EventOutbox, time: TimeSource = .system,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger,
        tap: (@Sendable ([Event]) -> [Event])? = nil, metrics: BoardMetrics = GatewayMetrics.none.adoptedBoards,
        reportStatus: @escaping @Sendable (_ online: Bool, _ node: String?) -> Void
    ) {
        self.tap = tap
        self.time = time
        linesAreSecret = config.alarm?.keypads.contains { $0.board == board.name } ?? false
        self.board = board
        self.builder = EventBuilder(board: board, config: config)
        self.outbox = outbox
        self.reportStatus = reportStatus
        self.group = group
        self.metrics = metrics
        var logger = logger
        logger[metadataKey: "board"] = "\(board.name)"
        self.logger = logger
        state.withLock { $0.node = board.match.path }
    }

    /// The device node the board is at now; nil while a discovered board is unplugged.
    public var node: String? { state.withLock { $0.node } }

    /// Discovery found the board at `node` (plugged in, or already there at start-up).
    public func attach(node: String) { setNode(node) }

    /// Discovery saw the board go (unplugged): its port is closed at once.
    public func detach() { setNode(nil) }

    private func setNode(_ node: String?) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.node != node else { return [] }
            state.node = node
            defer { state.nodeWaiters.removeAll() }
            return state.nodeWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once `node` is no longer `current` (or the task is cancelled).
    private func nodeChange(from current: String?) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // Checked under the lock that `onCancel` takes: a cancellation that came before
                // this registration is seen here, one that comes after finds the waiter.
                let changed = state.withLock { state -> Bool in
                    if state.node != current || Task.isCancelled { return true }
                    state.nodeWaiters.append(continuation)
                    return false
                }
                if changed { continuation.resume() }
            }
        } onCancel: {
            let waiters = state.withLock { state in
                defer { state.nodeWaiters.removeAll() }
                return state.nodeWaiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    /// A copy of the counters.
    public var counters: BoardCounters { state.withLock { $0.counters } }

    /// Runs until cancelled or until graceful shutdown.
    public func run() async {
        await cancelWhenGracefulShutdown {
            await self.keepOpen()
        }
    }

    private func keepOpen() async {
        var backoff = Backoff(initial: .milliseconds(250), maximum: board.reopenMax)
        var lastFailure: String?
        while !Task.isCancelled {
            guard let path = node else {
                // Unplugged: nothing to retry until discovery attaches it again.
                await nodeChange(from: nil)
                backoff.reset()
                continue
            }
            // The session ends when the port goes away, or at once when discovery detaches it.
            let opensBefore = counters.opens
            let outcome: Result<Void, any Error> = await withTaskGroup(of: Result<Void, any Error>?.self) { group in
                group.addTask {
                    do {
                        try await self.readSession(path: path)
                        return .success(())
                    } catch {
                        return .failure(error)
                    }
                }
                group.addTask {
                    await self.nodeChange(from: path)
                    return nil
                }
                let first = await group.next()!
                group.cancelAll()
                return first ?? .failure(CancellationError())
            }
            reportStatus(false, nil)
            if counters.opens != opensBefore {
                // It was open: a new failure is worth a log line, and the next attempt comes soon.
                backoff.reset()
                lastFailure = nil
            }
            if node != path { continue }  // moved or unplugged: no backoff
            if case .failure(let error) = outcome {
                // Only our own cancellation (the stop) ends the loop. The session cancelled because
                // the node changed and changed back (unplugged and replugged on the same node
                // before this looked: the campaign's plug cycles found it) is just a new session;
                // breaking out ended the reader, and a ServiceGroup ends the gateway with it.
                if error is CancellationError {
                    if Task.isCancelled { break }
                    continue
                }
                let failure = "\(error)"
                // Say it once, not on every retry while the board stays unplugged.
                if failure != lastFailure {
                    logger.warning(
                        "serial port unavailable, will retry", metadata: ["path": "\(path)", "error": "\(failure)"])
                    lastFailure = failure
                }
            }
            do { try await Task.sleep(for: backoff.nextDelay()) } catch { break }
        }
        reportStatus(false, nil)
    }

    /// Marks the board offline each time it has said nothing for `timeout` (a board whose sketch
    /// hung, or whose cable was cut past the USB chip, keeps its port open and just goes quiet).
    private func watchSilence(_ silence: SilenceWatch, timeout: Duration, path: String) async {
        while !Task.isCancelled {
            let quietSince = silence.lastHeard
            do { try await Task.sleep(until: quietSince + timeout, clock: .continuous) } catch { return }
            if silence.markSilentIfQuietSince(quietSince) {
                state.withLock { $0.counters.silences += 1 }
                logger.warning(
                    "board silent: marked offline", metadata: ["path": "\(path)", "silence_timeout": "\(timeout)"])
                reportStatus(false, path)
            } else if silence.isSilent {
                // Still quiet: looked at again a timeout later, not in a loop.
                do { try await Task.sleep(for: timeout) } catch { return }
            }
        }
    }

    /// Opens the port and reads it until it goes away.
    private func readSession(path: String) async throws {
        let port = try SerialPort.open(path: path, baud: board.baud, hupcl: board.hupcl)
        // Cancelled while settling: the port closes as it goes.
        try await Task.sleep(for: board.settle)
        let atLineStart = port.discardInput()
        let channel = try await port.channel(group: group)
        state.withLock { $0.counters.opens += 1 }
        metrics.opens.increment()
        logger.info(
            "board online", metadata: ["path": "\(path)", "baud": "\(board.baud)", "protocol": "\(board.protocolName)"])
        var framer = LineFramer(maxLineLength: board.maxLineLength)
        if !atLineStart { framer.resynchronise() }
        var throttle = LogThrottle()
        do {
            try await channel.executeThenClose { inbound, outbound in
                state.withLock { $0.writer = outbound }
                defer { state.withLock { $0.writer = nil } }
                reportStatus(true, path)
                let silence = SilenceWatch()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    if let timeout = board.silenceTimeout {
                        group.addTask { await self.watchSilence(silence, timeout: timeout, path: path) }
                    }
                    for try await buffer in inbound {
                        if silence.heard() {
                            logger.notice("board talking again", metadata: ["path": "\(path)"])
                            reportStatus(true, path)
                        }
                        var events = process(buffer, framer: &framer, throttle: &throttle)
                        if let tap, !events.isEmpty { events = tap(events) }
                        // Never waits for the disk: see `Journal.enqueue`.
                        if !events.isEmpty { await outbox.enqueue(events) }
                    }
                    group.cancelAll()
                }
            }
            logger.warning("board hung up", metadata: ["path": "\(path)"])
        } catch is CancellationError {
            logger.info("board closed", metadata: ["path": "\(path)"])
            throw CancellationError()
        } catch {
            logger.warning("board went away", metadata: ["path": "\(path)", "error": "\(error)"])
        }
        state.withLock { $0.counters.hangups += 1 }
        try Task.checkCancellation()
    }

    private func process(_ buffer: ByteBuffer, framer: inout LineFramer, throttle: inout LogThrottle) -> [Event] {
        // The flag first, as an anchor reads it: a clock set and flagged between the two reads
        // leaves a line "unsynced" with the new time (repaired, right), never "synced" with the old.
        let synchronised = time.synchronised()
        let now = time.wall()
        // With the boot, the true time of the line even when the wall clock is wrong (see `ClockRepair`).
        let monotonic = time.monotonic()
        var events: [Event] = []
        var lines = 0, malformed = 0, annotations = 0, published = 0
        var rejected: [LineFramer.Rejection: Int] = [:]
        buffer.withUnsafeReadableBytes { bytes in
            framer.feed(bytes) { output in
                switch output {
                case .rejected(let reason):
                    rejected[reason, default: 0] += 1
                    if reason != .partial, throttle.allow(reason.rawValue) {
                        logger.warning("line discarded", metadata: ["reason": "\(reason.rawValue)"])
                    }
                case .line(let line):
                    lines += 1
                    switch builder.outcome(for: line, receivedAt: now) {
                    case .events(var decoded):
                        published += 1
                        for index in decoded.indices {
                            decoded[index].receivedMonotonic = monotonic
                            decoded[index].receivedSynchronised = synchronised
                        }
                        events.append(contentsOf: decoded)
                    case .blank: break
                    case .annotation(let text):
                        annotations += 1
                        logger.debug(
                            "board says", metadata: ["line": "\(linesAreSecret ? "(a keypad's: not shown)" : text)"])
                    case .malformed(let reason):
                        malformed += 1
                        if throttle.allow("malformed") {
                            logger.warning(
                                "line does not decode, dropped",
                                metadata: [
                                    "protocol": "\(board.protocolName)",
                                    // The decoder's reason may quote the line (a keypad's code).
                                    "reason": "\(linesAreSecret ? "(a keypad's: not shown)" : "\(reason)")",
                                    "line": "\(linesAreSecret ? "(a keypad's: not shown)" : String(line.prefix(120)))"
                                ])
                        }
                    }
                }
            }
        }
        state.withLock { state in
            state.counters.lines += lines
            state.counters.events += events.count
            state.counters.malformed += malformed
            state.counters.annotations += annotations
            for (reason, count) in rejected { state.counters.rejected[reason, default: 0] += count }
            if lines > 0 { state.counters.lastLineAt = now }
        }
        metrics.lines.increment(.published, by: published)
        metrics.lines.increment(.malformed, by: malformed)
        metrics.lines.increment(.annotation, by: annotations)
        for (reason, count) in rejected { metrics.lines.increment(BoardMetrics.result(of: reason), by: count) }
        if lines > 0 { metrics.lastLine.record(now.timeIntervalSince1970) }
        return events
    }

    /// Writes one command line to the board (the command router has checked it against the allow-list).
    /// - Returns: false when the board is offline or the write failed.
    public func write(commandLine line: String) async -> Bool {
        guard let writer = state.withLock({ $0.writer }) else {
            countNotWritten()
            return false
        }
        do {
            // A board that stops reading (a hung USB-serial chip) fills NIO's buffer, and the write
            // then waits for room: bounded, so that one such board holds up the next command (for
            // any board) for at most this long.
            let taken = try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await writer.write(ByteBuffer(string: line + "\n"))
                    return true
                }
                group.addTask {
                    try await Task.sleep(for: Self.commandWriteTimeout)
                    return false
                }
                defer { group.cancelAll() }
                return try await group.next() ?? false
            }
            guard taken else {
                logger.warning(
                    "command not written: the board has not taken what was written before",
                    metadata: [
                        "waited": "\(Self.commandWriteTimeout)"
                    ])
                countNotWritten()
                return false
            }
            state.withLock { $0.counters.commandsWritten += 1 }
            metrics.commands.increment(.written)
            return true
        } catch {
            logger.warning("command write failed", metadata: ["error": "\(error)"])
            countNotWritten()
            return false
        }
    }

    /// How long a command may wait for room in the port's output buffer.
    public static let commandWriteTimeout = Duration.seconds(2)

    private func countNotWritten() {
        state.withLock { $0.counters.commandsNotWritten += 1 }
        metrics.commands.increment(.failed)
    }
}

/// At most one log line per second and kind, so a noisy board cannot flood the journal.
struct LogThrottle {
    private var last: [String: ContinuousClock.Instant] = [:]

    mutating func allow(_ kind: String) -> Bool {
        let now = ContinuousClock.now
        if let previous = last[kind], now - previous < .seconds(1) { return false }
        last[kind] = now
        return true
    }
}

/// When a board was last heard, shared by its read loop and its silence watch.
final class SilenceWatch: Sendable {
    private let state = Mutex((lastHeard: ContinuousClock.now, silent: false))

    /// When the last read came (or the port opened).
    var lastHeard: ContinuousClock.Instant { state.withLock { $0.lastHeard } }

    /// Whether the board is marked silent now.
    var isSilent: Bool { state.withLock { $0.silent } }

    /// A read came. - Returns: whether the board had been marked silent (it is online again).
    func heard() -> Bool {
        state.withLock { state in
            state.lastHeard = .now
            defer { state.silent = false }
            return state.silent
        }
    }

    /// Marks the board silent unless something was heard since `since`, or it is already.
    /// - Returns: whether it became silent now.
    func markSilentIfQuietSince(_ since: ContinuousClock.Instant) -> Bool {
        state.withLock { state in
            guard state.lastHeard == since, !state.silent else { return false }
            state.silent = true
            return true
        }
    }
}
