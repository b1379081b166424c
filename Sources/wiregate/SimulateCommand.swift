import ArgumentParser
import Foundation
import Glibc
import UnixSignals
import Wiregate
import WiregateCore

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "A virtual board on a pseudo-terminal: prints its path, plays lines, answers commands.",
        discussion: """
            Give the printed path (or --link) to a board's match.path. Lines come from --file, \
            played in a loop, or from the pattern of --protocol, each with a sequence number. \
            Commands the gateway writes are printed and answered as a sketch would. \
            For the installed service, which runs as the wiregate user: run this as root with \
            --owner wiregate and a --link outside /tmp (the service has its own /tmp), e.g. \
            /run/wiregate-demo/board. SIGTERM and SIGINT remove the link.
            """
    )

    @Option(help: "The protocol whose pattern to play: \(LineProtocols.names.joined(separator: ", ")).")
    var `protocol`: String = "kv"

    @Option(help: "Play the lines of this file instead of a pattern, in a loop.")
    var file: String?

    @Option(help: "Lines per second.")
    var rate: Double = 1

    @Option(help: "Stop after this many lines (default: never).")
    var count: Int?

    @Option(help: "Create this symlink to the pty, for a stable path in a config.")
    var link: String?

    @Option(
        help: ArgumentHelp(
            "Give the pty to this user (and group): the daemon's, when it runs as another user.",
            valueName: "user[:group]"))
    var owner: String?

    @Option(help: ArgumentHelp("The pty's mode, in octal (default: 0600 with --owner).", valueName: "mode"))
    var mode: String?

    func validate() throws {
        guard LineProtocols.decoderType(named: `protocol`) != nil else {
            throw ValidationError(
                "unknown protocol '\(`protocol`)' (expected one of \(LineProtocols.names.joined(separator: ", ")))")
        }
        guard rate > 0, rate <= 100_000 else { throw ValidationError("--rate must be in (0, 100000]") }
        _ = try access()
    }

    /// The pty's owner and mode from --owner and --mode; nil when neither is given.
    private func access() throws -> SimulatedBoard.Access? {
        guard owner != nil || mode != nil else { return nil }
        var uid = getuid(), gid = getgid()
        if let owner {
            let parts = owner.split(separator: ":", maxSplits: 1).map(String.init)
            guard let user = getpwnam(parts[0]) else { throw ValidationError("--owner: no user '\(parts[0])'") }
            uid = user.pointee.pw_uid
            gid = user.pointee.pw_gid
            if parts.count == 2 {
                guard let group = getgrnam(parts[1]) else { throw ValidationError("--owner: no group '\(parts[1])'") }
                gid = group.pointee.gr_gid
            }
        }
        var bits: mode_t = 0o600
        if let mode {
            guard let value = mode_t(mode, radix: 8), value <= 0o666 else {
                throw ValidationError("--mode: '\(mode)' is not a file mode in octal, at most 0666 (e.g. 0660)")
            }
            bits = value
        }
        return SimulatedBoard.Access(uid: uid, gid: gid, mode: bits)
    }

    func run() async throws {
        // Trapped before the link exists: a SIGTERM sent as soon as it appears still removes it.
        // SIGHUP too: the terminal or ssh session it ran in closed.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
        let board: SimulatedBoard
        do {
            board = try SimulatedBoard(link: link, access: try access())
        } catch let error as SystemCallError where error.call == "symlink" && error.code == EEXIST {
            throw ValidationError(
                "--link \(error.path): something is there that is not a stale simulator's link (a file, or a running simulator's pty); remove it or choose another path"
            )
        } catch let error as SystemCallError where error.call == "fchown" {
            throw ValidationError("--owner: cannot give the pty away (\(error)): only root can")
        }
        // However the playback ends (SIGTERM and SIGINT cancel it), the board hangs up, which removes the link.
        defer { board.hangUp() }
        say(board.path)
        let playback = Task { try await play(on: board) }
        let stopper = Task {
            for await _ in signals {
                playback.cancel()
                return
            }
        }
        defer { stopper.cancel() }
        try await playback.value
    }

    private func play(on board: SimulatedBoard) async throws {
        var lines: [String]?
        if let file {
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
                throw ValidationError("cannot read \(file): \(error.localizedDescription)")
            }
            lines = text.split(whereSeparator: \.isNewline).map(String.init)
            guard lines?.isEmpty == false else { throw ValidationError("\(file) holds no lines") }
        }
        let protocolName = `protocol`
        let answering = Task.detached {
            while !Task.isCancelled {
                for command in board.receivedLines(timeout: .milliseconds(200)) {
                    say("command: \(command)")
                    board.send(SamplePattern.reply(protocol: protocolName, to: command))
                }
            }
        }
        let start = ContinuousClock.now
        let interval = Duration.seconds(1 / rate)
        var sequence = 0
        while count.map({ sequence < $0 }) ?? true, !Task.isCancelled {
            let line =
                lines.map { $0[sequence % $0.count] } ?? SamplePattern.line(protocol: protocolName, sequence: sequence)
            board.send(line)
            sequence += 1
            // Paced from the start, so a late wake-up does not slow the rate down.
            try? await Task.sleep(until: start + interval * sequence, clock: .continuous)
        }
        try? await Task.sleep(for: .milliseconds(500))
        answering.cancel()
        _ = await answering.value
        if board.droppedLines > 0 {
            FileHandle.standardError.write(
                Data("simulate: \(board.droppedLines) line(s) dropped: nobody read the port\n".utf8))
        }
    }
}

/// Prints a line unbuffered, so a script reading the simulator's output sees it at once.
private func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
