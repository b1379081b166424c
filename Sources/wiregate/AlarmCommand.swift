import ArgumentParser
import Foundation
import Glibc
import Wiregate
import WiregateCore

/// `wiregate alarm status | arm MODE | disarm`: the alarm driven from the gateway itself, through
/// the daemon's socket, with no network at all. The code is asked on the terminal (or read from
/// standard input when that is not one), never taken from the command line.
struct AlarmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alarm",
        abstract: "Show, arm or disarm the gateway's alarm through the running daemon.",
        discussion: """
            Examples:
              wiregate alarm status
              wiregate alarm arm away
              wiregate alarm disarm            (asks for the code)
            Only root and the service's user and group may use the daemon's socket.
            """)

    enum Action: String, ExpressibleByArgument, CaseIterable {
        case status, arm, disarm
    }

    @OptionGroup var options: ConfigOption

    @Argument(help: "status, arm or disarm.")
    var action: Action

    @Argument(help: "For arm: home, away, night or vacation.")
    var mode: ArmMode?

    func validate() throws {
        if action == .arm && mode == nil { throw ValidationError("arm needs a mode: home, away, night or vacation") }
        if action != .arm && mode != nil { throw ValidationError("only arm takes a mode") }
    }

    func run() throws {
        let config = try loadConfigOrExit(options.config)
        guard let alarm = config.alarm else {
            FileHandle.standardError.write(Data("error: \(options.config) has no alarm: section\n".utf8))
            throw ExitCode(1)
        }
        var request = AlarmControlSocket.Request(command: action.rawValue, mode: mode?.rawValue)
        if action == .disarm || (action == .arm && alarm.settings.codeArmRequired) {
            guard let code = readCode() else {
                FileHandle.standardError.write(Data("error: no code entered\n".utf8))
                throw ExitCode(1)
            }
            request.code = code
        }
        let path = AlarmControlSocket.path(for: config)
        let reply: AlarmControlSocket.Reply
        do {
            reply = try AlarmControlSocket.send(request, to: path)
        } catch let error as SystemCallError {
            let why =
                switch error.code {
                case EACCES, EPERM: "only root and the service's user and group may use it"
                case ENOENT, ECONNREFUSED: "is the daemon running, with this config?"
                default: "\(error)"
                }
            FileHandle.standardError.write(Data("error: cannot reach the alarm at \(path): \(why)\n".utf8))
            throw ExitCode(1)
        }
        if reply.ok {
            print("alarm: \(reply.state ?? "?")")
            if let problem = reply.error {
                FileHandle.standardError.write(
                    Data("warning: \(problem): a restart now would not restore this state\n".utf8))
            }
        } else {
            FileHandle.standardError.write(
                Data("refused: \(reply.error ?? "?") (alarm: \(reply.state ?? "?"))\n".utf8))
            throw ExitCode(2)
        }
    }

    /// The code, from the terminal with echo off, or a line of standard input when it is not a terminal.
    func readCode() -> String? {
        guard isatty(STDIN_FILENO) == 1 else {
            return readLine(strippingNewline: true).flatMap { $0.isEmpty ? nil : $0 }
        }
        FileHandle.standardError.write(Data("code: ".utf8))
        var saved = termios()
        tcgetattr(STDIN_FILENO, &saved)
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent)
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return readLine(strippingNewline: true).flatMap { $0.isEmpty ? nil : $0 }
    }
}

extension ArmMode: ExpressibleByArgument {}
