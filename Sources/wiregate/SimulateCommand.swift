import ArgumentParser
import Foundation
import Wiregate
import WiregateCore

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "A virtual board on a pseudo-terminal: prints its path, plays lines, answers commands.",
        discussion: """
        Give the printed path (or --link) to a board's match.path. Lines come from --file, \
        played in a loop, or from the pattern of --protocol, each with a sequence number. \
        Commands the gateway writes are printed and answered as a sketch would.
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

    func validate() throws {
        guard LineProtocols.decoderType(named: `protocol`) != nil else {
            throw ValidationError("unknown protocol '\(`protocol`)' (expected one of \(LineProtocols.names.joined(separator: ", ")))")
        }
        guard rate > 0, rate <= 100_000 else { throw ValidationError("--rate must be in (0, 100000]") }
    }

    func run() async throws {
        var lines: [String]?
        if let file {
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
                throw ValidationError("cannot read \(file): \(error.localizedDescription)")
            }
            lines = text.split(whereSeparator: \.isNewline).map(String.init)
            guard lines?.isEmpty == false else { throw ValidationError("\(file) holds no lines") }
        }
        let board = try SimulatedBoard(link: link)
        say(board.path)
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
            let line = lines.map { $0[sequence % $0.count] } ?? SamplePattern.line(protocol: protocolName, sequence: sequence)
            board.send(line)
            sequence += 1
            // Paced from the start, so a late wake-up does not slow the rate down.
            try? await Task.sleep(until: start + interval * sequence, clock: .continuous)
        }
        try? await Task.sleep(for: .milliseconds(500))
        answering.cancel()
        _ = await answering.value
        if board.droppedLines > 0 {
            FileHandle.standardError.write(Data("simulate: \(board.droppedLines) line(s) dropped: nobody read the port\n".utf8))
        }
        board.hangUp()
    }
}

/// Prints a line unbuffered, so a script reading the simulator's output sees it at once.
private func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
