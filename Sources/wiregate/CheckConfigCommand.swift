import ArgumentParser
import Foundation
import Wiregate
import WiregateCore

struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a config file and exit: 0 when it is valid, 78 with the place of the mistake when not."
    )

    @OptionGroup var options: ConfigOption

    func run() throws {
        let config = try loadConfigOrExit(options.config)
        var tlsProblem: String?
        do {
            tlsProblem = try MosquittoClient.checkTLS(config)
        } catch {
            FileHandle.standardError.write(Data("error: \(options.config): \(error)\n".utf8))
            throw ExitCode(78)
        }
        print("\(options.config): OK: gateway '\(config.gateway.id)', broker \(config.mqtt.host):\(config.mqtt.port), \(config.boards.count) board(s)")
        if let tls = config.mqtt.tls {
            print("  TLS: the CA\(tls.certFile == nil ? "" : ", certificate and key") load; the broker's certificate must name '\(tls.serverName ?? config.mqtt.host)'")
        }
        if let tlsProblem { print("  warning: \(tlsProblem)") }
        for (key, path) in config.secretFilesReadableByOthers {
            print("  warning: \(key) '\(path)' can be read by other users: chmod o-r it (0600, or 0640 with the service's group)")
        }
        for board in config.boards {
            print("  \(board.name): \(board.match) at \(board.baud) baud, protocol \(board.protocolName), \(board.commands.allowed.count) command(s) allowed")
        }
    }
}

/// Loads and validates the config, the password included; prints the error and exits 78 (EX_CONFIG) when it is wrong.
func loadConfigOrExit(_ path: String) throws -> GatewayConfig {
    do {
        let config = try GatewayConfig.load(path: path)
        _ = try config.mqttPassword()
        if config.backend != nil, try config.backendToken() == nil {
            throw ConfigError(file: path, line: nil, column: nil, path: "backend",
                              message: "needs a token: backend.token_file, or the \(GatewayConfig.tokenEnvironmentVariable) environment variable")
        }
        return config
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(78)
    }
}
