import Foundation
import Glibc
import Testing
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
        let path = try writeConfig("""
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
        let path = try writeConfig("""
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

    @Test func missingFileAndUnreadablePasswordAreErrors() throws {
        let missing = try runWiregate(["check-config", "--config", "/nonexistent/wiregate.yaml"])
        #expect(missing.status == 78)
        #expect(missing.output.contains("/nonexistent/wiregate.yaml: cannot read the file"))
        let path = try writeConfig("""
        gateway: { id: house-1 }
        mqtt: { username: gw, password_file: /nonexistent/mqtt.pass }
        boards: [ { name: a, match: { path: /dev/ttyACM0 }, protocol: raw } ]
        """)
        defer { unlink(path) }
        let result = try runWiregate(["check-config", "--config", path])
        #expect(result.status == 78)
        #expect(result.output.contains("mqtt.password_file: cannot read the password file"))
    }
}

/// Runs the `wiregate` binary to its end.
/// - Returns: its exit status and everything it printed (stdout and stderr).
func runWiregate(_ arguments: [String]) throws -> (status: Int32, output: String) {
    try ChildProcess.run(CommandLineTests.binary, arguments, mergingStandardError: true)
}
