import ArgumentParser
import Foundation
import Glibc
import Wiregate
import WiregateCore

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a starting config from the boards plugged in now, the broker and its TLS files.",
        discussion: """
            Each USB serial board in discovery's allow-list gets an entry matching it by its serial \
            number (else its USB port), named as `devices` shows it; boards plugged in later are \
            adopted. The file is checked before it is written, and an existing one is kept unless \
            --force is given. Secrets are never taken here: name the file that holds one.
            """
    )

    @Option(name: .shortAndLong, help: "The config file to write.")
    var output: String = "/etc/wiregate/wiregate.yaml"

    @Flag(help: "Replace the file if it exists.")
    var force = false

    @Option(
        help:
            "This house's name: one topic level, the prefix of every event id (default: the host name, '\(GatewayConfig.hostGatewayID)')."
    )
    var gatewayID: String?

    @Option(
        help: ArgumentHelp("The broker (default 127.0.0.1, port 1883, or 8883 with TLS).", valueName: "host[:port]"))
    var broker: String?

    @Option(help: "The broker's user name.")
    var username: String?

    @Option(help: "The file holding the broker's password (never the password itself).")
    var passwordFile: String?

    @Option(help: "The CA the broker's certificate must chain to: turns TLS on.")
    var tlsCA: String?

    @Option(help: "This gateway's certificate, for a broker that requires one (with --tls-key).")
    var tlsCert: String?

    @Option(help: "The key of --tls-cert.")
    var tlsKey: String?

    @Option(
        help: ArgumentHelp(
            "A board at a fixed device path, not found through udev (a simulated board, a UART). Repeatable.",
            valueName: "name=path"))
    var path: [String] = []

    @Option(help: "The protocol the boards speak: \(LineProtocols.names.joined(separator: ", ")).")
    var `protocol`: String = "kv"

    @Option(help: "Where the daemon keeps its journal.")
    var stateDir: String = "/var/lib/wiregate"

    @Option(
        help: ArgumentHelp(
            "A USB vendor:product pair (vvvv:pppp, or vvvv:* for every product) to take as a board, "
                + "beside Arduino's and CH340's. Repeatable.", valueName: "vvvv:pppp"))
    var usbID: [String] = []

    func validate() throws {
        guard LineProtocols.decoderType(named: `protocol`) != nil else {
            throw ValidationError(
                "unknown protocol '\(`protocol`)' (expected one of \(LineProtocols.names.joined(separator: ", ")))")
        }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        for entry in path where !entry.contains("=") {
            throw ValidationError("--path '\(entry)': expected name=path, e.g. front-door=/dev/ttyUSB0")
        }
    }

    func run() throws {
        var config = StartingConfig(gatewayID: gatewayID ?? GatewayConfig.hostGatewayID)
        config.stateDirectory = stateDir
        config.protocolName = `protocol`
        do {
            config.usbIDs = try USBAllowList(USBAllowList.arduinoOnly.configText + usbID)
        } catch {
            throw ValidationError("--usb-id '\(error.entry)': expected vvvv:pppp or vvvv:*, four hex digits each")
        }
        if let broker {
            let parts = broker.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2, !parts[0].isEmpty else {
                throw ValidationError("--broker '\(broker)': expected host or host:port")
            }
            config.host = String(parts[0])
            if parts.count == 2 {
                guard let port = Int(parts[1]), (1...65535).contains(port) else {
                    throw ValidationError("--broker '\(broker)': the port must be 1 to 65535")
                }
                config.port = port
            }
        }
        config.username = username
        config.passwordFile = passwordFile
        config.tlsCAFile = tlsCA
        config.tlsCertFile = tlsCert
        config.tlsKeyFile = tlsKey
        for entry in path {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            config.boards.append(.init(name: parts[0], match: BoardMatch(path: parts.count == 2 ? parts[1] : "")))
        }
        var found = 0
        do {
            let before = config.boards.count
            config.addDevices(try DeviceWatcher.presentTTYs())
            found = config.boards.count - before
        } catch {
            print("note: udev cannot list devices (\(error)): no board found; boards plugged in later are adopted")
        }

        // Checked as `run` would read it, before anything is written.
        let text = config.yaml
        do {
            _ = try GatewayConfig.parse(yaml: text, file: output)
        } catch {
            FileHandle.standardError.write(Data("error: the config would not be valid: \(error)\n".utf8))
            throw ExitCode(78)
        }
        guard force || !FileManager.default.fileExists(atPath: output) else {
            FileHandle.standardError.write(
                Data("error: \(output) exists: --force replaces it (or --output elsewhere)\n".utf8))
            throw ExitCode(73)  // EX_CANTCREAT
        }
        do {
            // Whole or not at all: written beside it, then renamed over it.
            try Data(text.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
            chmod(output, 0o644)
        } catch {
            FileHandle.standardError.write(Data("error: cannot write \(output): \(GatewayConfig.reason(error))\n".utf8))
            throw ExitCode(73)
        }
        print(
            "\(output): gateway '\(config.gatewayID)', broker \(config.host)\(config.port.map { ":\($0)" } ?? ""), "
                + "\(found) board(s) found plugged in, \(path.count) at fixed paths; other boards are adopted")
        if passwordFile != nil, tlsCA == nil, !["127.0.0.1", "::1", "localhost"].contains(config.host) {
            print(
                "warning: the password would cross the network to \(config.host) in clear text: give --tls-ca (and the broker a TLS listener)"
            )
        }
        print(
            "next: wiregate check-config --config \(output)   (as root, --user wiregate checks the files for the service)"
        )
    }
}
