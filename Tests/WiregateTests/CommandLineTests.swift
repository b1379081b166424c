import Foundation
import Glibc
import Testing
import Wiregate
import WiregateTestKit

/// The `wiregate` binary itself: exit codes and messages a user sees.
@Suite struct CommandLineTests {
    /// The binary built beside the test bundle.
    static let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("wiregate").path

    func writeConfig(_ text: String) throws -> String {
        let path = temporaryPath("cli", suffix: ".yaml")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func checkConfigAcceptsAValidFile() throws {
        let path = try writeConfig(
            """
            gateway: { id: house-1 }
            mqtt: { host: 127.0.0.1 }
            boards:
              - { name: front-door, match: { path: /dev/ttyACM0 }, protocol: kv, commands: [ PING ] }
            """)
        defer { unlink(path) }
        let result = try runWiregate(["check-config", "--config", path])
        #expect(result.status == 0)
        #expect(result.output.contains("OK"))
        #expect(result.output.contains("front-door: path /dev/ttyACM0"))
    }

    @Test func checkConfigPointsAtTheMistake() throws {
        let path = try writeConfig(
            """
            gateway: { id: house-1 }
            mqtt: { host: 127.0.0.1 }
            boards:
              - name: front-door
                match: { path: /dev/ttyACM0 }
                protocol: kv
                baud: lots
            """)
        defer { unlink(path) }
        let result = try runWiregate(["check-config", "--config", path])
        #expect(result.status == 78)
        #expect(result.output.contains("\(path):7:11: boards[0].baud: expected a whole number, found 'lots'"))
    }

    /// A new user's first config holds several mistakes: one run names them all, each at its line,
    /// and a missing secret says how to make it.
    @Test func checkConfigReportsEveryMistakeAtOnce() throws {
        let path = try writeConfig(
            """
            gateway: { id: house-1 }
            mqtt: { username: gw, password_file: /nonexistent/mqtt.pass }
            boards:
              - { name: a, match: { path: /dev/ttyACM0 }, protocol: raw, baud: lots }
            backend: { url: "https://backend.lan", token_file: /nonexistent/backend.token }
            """)
        let result = try runWiregate(["check-config", "--config", path])
        #expect(result.status == 78)
        #expect(
            result.output.contains(
                "\(path):2:38: mqtt.password_file: '/nonexistent/mqtt.pass' does not exist: write it"),
            "\(result.output)")
        #expect(result.output.contains("WIREGATE_MQTT_PASSWORD"))
        #expect(result.output.contains("\(path):4:68: boards[0].baud: expected a whole number"))
        #expect(result.output.contains("\(path):5:52: backend.token_file: '/nonexistent/backend.token' does not exist"))
        #expect(result.output.contains("3 mistakes in \(path)"))
    }

    /// `init` writes a config that checks, names fixed-path boards, and never overwrites one unasked.
    @Test func initWritesAConfigThatChecksAndKeepsAnExistingOne() throws {
        let path = temporaryPath("init", suffix: ".yaml")
        let first = try runWiregate([
            "init", "--output", path, "--gateway-id", "house-9", "--broker", "broker.lan:1884",
            "--path", "front-door=/dev/ttyAMA0"
        ])
        #expect(first.status == 0, "\(first.output)")
        let check = try runWiregate(["check-config", "--config", path])
        #expect(check.status == 0, "\(check.output)")
        #expect(check.output.contains("gateway 'house-9', broker broker.lan:1884"), "\(check.output)")
        #expect(check.output.contains("front-door: path /dev/ttyAMA0"), "\(check.output)")
        let written = try String(contentsOfFile: path, encoding: .utf8)
        let again = try runWiregate(["init", "--output", path, "--gateway-id", "other"])
        #expect(again.status == 73 && again.output.contains("exists: --force replaces it"), "\(again.output)")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == written)
        #expect(try runWiregate(["init", "--output", path, "--gateway-id", "other", "--force"]).status == 0)
        #expect(try String(contentsOfFile: path, encoding: .utf8).contains("\"other\""))
        // A name that is no topic level is refused before anything is written.
        let bad = try runWiregate([
            "init", "--output", temporaryPath("init", suffix: ".yaml"), "--path", "a#b=/dev/ttyAMA0"
        ])
        #expect(bad.status == 78 && bad.output.contains("wildcard"), "\(bad.output)")
    }

    /// `devices` shows the boards at fixed paths beside the USB ones: a board a user configured by
    /// path is not "no device found".
    @Test func devicesShowsBoardsAtFixedPaths() throws {
        let board = try SimulatedBoard()
        let path = try writeConfig(
            """
            gateway: { id: house-1, state_dir: \(temporaryPath("state")) }
            mqtt: { host: 127.0.0.1 }
            boards:
              - { name: door, match: { path: \(board.path) }, protocol: kv }
              - { name: later, match: { path: /nonexistent/tty }, protocol: kv }
            """)
        let result = try runWiregate(["devices", "--config", path])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("\(board.path)  board: door (fixed path (match.path))"), "\(result.output)")
        #expect(
            result.output.contains("/nonexistent/tty  board: later (fixed path (match.path): nothing there yet"),
            "\(result.output)")
    }

    /// `simulate --link` removes its link on SIGTERM, SIGINT and SIGHUP, replaces one a SIGKILL left,
    /// never takes a running simulator's link nor deletes a file that is not a simulator's link, and
    /// gives the pty to `--owner`.
    @Test func simulateCleansUpItsLinkAndGivesThePtyAway() async throws {
        let link = temporaryPath("sim-link")
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGKILL] {
            let simulator = try ChildProcess(
                Self.binary, ["simulate", "--link", link, "--owner", "nobody", "--mode", "0660"])
            #expect(await eventually { FileManager.default.fileExists(atPath: link) }, "no link")
            var info = stat()
            #expect(stat(link, &info) == 0)
            #expect(
                info.st_uid == getpwnam("nobody").pointee.pw_uid && info.st_mode & 0o777 == 0o660,
                "mode \(String(info.st_mode, radix: 8))")
            simulator.send(signal)
            _ = simulator.waitForExit()
            if signal == SIGKILL {
                // Left behind: the next run replaces it.
                #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link)) != nil)
            } else {
                #expect(
                    !FileManager.default.fileExists(atPath: link)
                        && (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == nil,
                    "signal \(signal) left the link")
            }
        }
        // The link the SIGKILL left, as it is (the new pty may well get the killed one's number):
        // replaced. A new link is another inode, which the pty's number cannot tell.
        @Sendable func linkInode() -> ino_t? {
            var info = stat()
            return lstat(link, &info) == 0 ? info.st_ino : nil
        }
        let stale = try #require(linkInode())
        // Held open meanwhile, so that the filesystem cannot hand the stale link's inode to the new one.
        let holder = open(link, 0o10000000 /* O_PATH, which Glibc's module does not export */ | O_NOFOLLOW)
        #expect(holder >= 0)
        defer { close(holder) }
        let replaced = try ChildProcess(Self.binary, ["simulate", "--link", link])
        #expect(
            await eventually { linkInode().map { $0 != stale } == true && replaced.isRunning },
            "the stale link was not replaced")
        // A second simulator does not take a running one's link.
        let second = try runWiregate(["simulate", "--link", link, "--count", "1"])
        #expect(second.status != 0 && second.output.contains("running simulator"), "\(second.output)")
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link))?.hasPrefix("/dev/pts/") == true)
        replaced.terminate()
        _ = replaced.waitForExit()
        // A file that is not a simulator's link stays, and the error says so.
        try "keep me".write(toFile: link, atomically: false, encoding: .utf8)
        let refused = try runWiregate(["simulate", "--link", link])
        #expect(refused.status != 0 && refused.output.contains("not a stale simulator's link"), "\(refused.output)")
        #expect(try String(contentsOfFile: link, encoding: .utf8) == "keep me")
    }

    @Test func missingFileAndUnreadablePasswordAreErrors() throws {
        let missing = try runWiregate(["check-config", "--config", "/nonexistent/wiregate.yaml"])
        #expect(missing.status == 78)
        #expect(missing.output.contains("/nonexistent/wiregate.yaml: cannot read the file"))
        let path = try writeConfig(
            """
            gateway: { id: house-1 }
            mqtt: { username: gw, password_file: /nonexistent/mqtt.pass }
            boards: [ { name: a, match: { path: /dev/ttyACM0 }, protocol: raw } ]
            """)
        defer { unlink(path) }
        let result = try runWiregate(["check-config", "--config", path])
        // Only a file is wrong: 66, which the unit retries (a secret may be written late in boot).
        #expect(result.status == 66)
        #expect(
            result.output.contains("mqtt.password_file: '/nonexistent/mqtt.pass' does not exist"), "\(result.output)")
    }
}

/// Runs the `wiregate` binary to its end.
/// - Returns: its exit status and everything it printed (stdout and stderr).
func runWiregate(_ arguments: [String]) throws -> (status: Int32, output: String) {
    try ChildProcess.run(CommandLineTests.binary, arguments, mergingStandardError: true)
}
