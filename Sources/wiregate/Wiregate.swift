import ArgumentParser
import Foundation
import WiregateCore

@main
struct WiregateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wiregate",
        abstract: "Edge gateway: wired boards on serial ports to MQTT, and commands back.",
        // The Debian package's version comes from WiregateVersion (deploy/package-deb.sh runs `wiregate --version`).
        version: WiregateVersion.current,
        subcommands: [
            RunCommand.self, CheckConfigCommand.self, InitCommand.self, StatusCommand.self, DevicesCommand.self,
            SimulateCommand.self, AlarmCommand.self
        ]
    )
}

/// The `--config` option shared by the commands that read a config.
struct ConfigOption: ParsableArguments {
    @Option(name: .shortAndLong, help: "The config file.")
    var config: String = "/etc/wiregate/wiregate.yaml"
}

/// `--json`, for the commands that print a report.
struct JSONOutputOption: ParsableArguments {
    @Flag(help: "Print JSON instead of text.")
    var json = false
}

/// Prints `value` as indented JSON with sorted keys and RFC 3339 dates: stable for scripts and diffs.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .iso8601
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}
