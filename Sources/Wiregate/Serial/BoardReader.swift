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
/// Reads are driven by NIO's event loop (epoll): no thread per board, no polling.
public final class BoardReader: Service, Sendable {
    public let board: GatewayConfig.Board
    private let builder: EventBuilder
    private let outbox: any EventOutbox
    private let statuses: BoardStatusRegistry
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var counters = BoardCounters()
        var writer: NIOAsyncChannelOutboundWriter<ByteBuffer>?
    }

    public init(board: GatewayConfig.Board, config: GatewayConfig, outbox: any EventOutbox,
                statuses: BoardStatusRegistry, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger) {
        self.board = board
        self.builder = EventBuilder(board: board, config: config)
        self.outbox = outbox
        self.statuses = statuses
        self.group = group
        var logger = logger
        logger[metadataKey: "board"] = "\(board.name)"
        self.logger = logger
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
            do {
                try await readSession { backoff.reset(); lastFailure = nil }
            } catch is CancellationError {
                break
            } catch {
                let failure = "\(error)"
                // Say it once, not on every retry while the board stays unplugged.
                if failure != lastFailure {
                    logger.warning("serial port unavailable, will retry", metadata: ["path": "\(board.path)", "error": "\(failure)"])
                    lastFailure = failure
                }
            }
            await statuses.set(board.name, online: false)
            do { try await Task.sleep(for: backoff.nextDelay()) } catch { break }
        }
        await statuses.set(board.name, online: false)
    }

    /// Opens the port and reads it until it goes away.
    /// - Parameter opened: called once the port is open and settled.
    private func readSession(opened: () -> Void) async throws {
        let fd = try SerialPort.open(path: board.path, baud: board.baud, hupcl: board.hupcl)
        do {
            try await Task.sleep(for: board.settle)
        } catch {
            close(fd)
            throw error
        }
        SerialPort.discardInput(fd)
        let channel = try await NIOPipeBootstrap(group: group)
            .takingOwnershipOfDescriptor(inputOutput: fd) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        opened()
        state.withLock { $0.counters.opens += 1 }
        logger.info("board online", metadata: ["path": "\(board.path)", "baud": "\(board.baud)", "protocol": "\(board.protocolName)"])
        var framer = LineFramer(maxLineLength: board.maxLineLength)
        framer.resynchronise()
        var throttle = LogThrottle()
        do {
            try await channel.executeThenClose { inbound, outbound in
                state.withLock { $0.writer = outbound }
                defer { state.withLock { $0.writer = nil } }
                await statuses.set(board.name, online: true)
                for try await buffer in inbound {
                    let events = process(buffer, framer: &framer, throttle: &throttle)
                    if !events.isEmpty { await outbox.append(events) }
                }
            }
            logger.warning("board hung up", metadata: ["path": "\(board.path)"])
        } catch is CancellationError {
            logger.info("board closed", metadata: ["path": "\(board.path)"])
            throw CancellationError()
        } catch {
            logger.warning("board went away", metadata: ["path": "\(board.path)", "error": "\(error)"])
        }
        state.withLock { $0.counters.hangups += 1 }
        try Task.checkCancellation()
    }

    private func process(_ buffer: ByteBuffer, framer: inout LineFramer, throttle: inout LogThrottle) -> [Event] {
        let now = Date()
        var events: [Event] = []
        var lines = 0, malformed = 0, annotations = 0
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
                    case .events(let decoded): events.append(contentsOf: decoded)
                    case .blank: break
                    case .annotation(let text):
                        annotations += 1
                        logger.debug("board says", metadata: ["line": "\(text)"])
                    case .malformed(let reason):
                        malformed += 1
                        if throttle.allow("malformed") {
                            logger.warning("line does not decode, dropped", metadata: [
                                "protocol": "\(board.protocolName)", "reason": "\(reason)", "line": "\(line.prefix(120))",
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
        }
        return events
    }

    /// Writes one command line to the board.
    /// - Returns: false when the board is offline or the write failed.
    public func write(commandLine line: String) async -> Bool {
        guard let writer = state.withLock({ $0.writer }) else {
            countRefused()
            return false
        }
        do {
            try await writer.write(ByteBuffer(string: line + "\n"))
            state.withLock { $0.counters.commandsWritten += 1 }
            return true
        } catch {
            logger.warning("command write failed", metadata: ["error": "\(error)"])
            countRefused()
            return false
        }
    }

    /// Counts a command that was not written (the router refused it or the board was offline).
    public func countRefused() {
        state.withLock { $0.counters.commandsRefused += 1 }
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
