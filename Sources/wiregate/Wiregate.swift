import ArgumentParser

@main
struct WiregateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wiregate",
        abstract: "Edge gateway: wired boards on serial ports to MQTT, and commands back.",
        subcommands: [RunCommand.self, CheckConfigCommand.self, StatusCommand.self, DevicesCommand.self, SimulateCommand.self]
    )
}

/// The `--config` option shared by the commands that read a config.
struct ConfigOption: ParsableArguments {
    @Option(name: .shortAndLong, help: "The config file.")
    var config: String = "/etc/wiregate/wiregate.yaml"
}
