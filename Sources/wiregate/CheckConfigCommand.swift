import ArgumentParser
import Foundation
import Glibc
import Wiregate
import WiregateCore

struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a config file and exit: 0 when it is valid, 78 with the place of the mistake when not."
    )

    @OptionGroup var options: ConfigOption

    @Option(
        help: ArgumentHelp(
            "Check the files as this user, the daemon's (default: the user running this; as root, the "
                + "service's user \(Self.serviceUser) is checked too, as warnings).", valueName: "name"))
    var user: String?

    /// The user the packaged unit runs the daemon as.
    static let serviceUser = "wiregate"

    /// The unit the Debian package installs.
    static let packagedUnit = "/lib/systemd/system/wiregate.service"

    func validate() throws {
        if let user, FileAccess.User.named(user) == nil { throw ValidationError("--user: no user '\(user)'") }
    }

    func run() throws {
        let access = user.flatMap(FileAccess.User.named).map { FileAccess(user: $0) } ?? FileAccess()
        let config = try loadConfigOrExit(options.config, access: access, checkStateDirectory: true)
        var tlsProblem: String?
        do {
            tlsProblem = try MosquittoClient.checkTLS(config)
        } catch {
            FileHandle.standardError.write(Data("error: \(options.config): \(error)\n".utf8))
            throw ExitCode(78)
        }
        print(
            "\(options.config): OK: gateway '\(config.gateway.id)', broker \(config.mqtt.host):\(config.mqtt.port), \(config.boards.count) board(s)"
        )
        if config.gateway.idIsDefault {
            print(
                "  the gateway's id is the host name's: set gateway.id to keep it if the host is renamed "
                    + "(the id names its topics, its client id and its events in the backend)")
            if GatewayConfig.isGenericHostName(config.gateway.id) {
                print(
                    "  warning: '\(config.gateway.id)' is the host name every such machine starts with: set gateway.id "
                        + "(or rename the host) before a second gateway meets this broker")
            }
        }
        if let tls = config.mqtt.tls {
            print(
                "  TLS: the CA\(tls.certFile == nil ? "" : ", certificate and key") load; the broker's certificate must name '\(tls.serverName ?? config.mqtt.host)'"
            )
        }
        if let tlsProblem { print("  warning: \(tlsProblem)") }
        // Run as root to check a config for the service: root reads everything, its user may not.
        if user == nil, geteuid() == 0, let service = FileAccess.User.named(Self.serviceUser) {
            for problem in ConfigFileCheck.problems(
                config.files, file: options.config, access: FileAccess(user: service))
            {
                print("  warning: as the service's user: \(problem)")
            }
        }
        if let user { print("  the files were checked as user \(user)") }
        // What the packaged unit's sandbox would deny: said where the package is installed.
        if FileManager.default.fileExists(atPath: Self.packagedUnit) {
            for warning in ConfigFileCheck.sandboxWarnings(config.files, file: options.config) {
                print("  warning: \(warning)")
            }
            // It opens only USB serial ports (DevicePolicy=closed, DeviceAllow by major); a pty is
            // for a simulated board, run by hand.
            for board in config.boards {
                // A device that is not there (unplugged) says nothing about its kind.
                guard let path = board.match.path, let device = FileAccess.resolved(path) else { continue }
                guard !["/dev/ttyUSB", "/dev/ttyACM", "/dev/pts/"].contains(where: device.hasPrefix) else { continue }
                print(
                    "  warning: \(board.name): the packaged unit opens only ttyUSB and ttyACM devices: for \(path), "
                        + "add DeviceAllow=\(device) rw in a drop-in (systemctl edit wiregate)")
            }
        }
        for (key, path) in config.secretFilesReadableByOthers {
            print(
                "  warning: \(key) '\(path)' can be read by other users: chmod o-r it (0600, or 0640 with the service's group)"
            )
        }
        for board in config.boards {
            print(
                "  \(board.name): \(board.match) at \(board.baud) baud, protocol \(board.protocolName), \(board.commands.allowed.count) command(s) allowed"
            )
        }
    }
}

/// Loads and validates the config, the files it names and the password included; prints every
/// mistake found and exits when there is one: 78 (EX_CONFIG) for a mistake in the config's text,
/// which only an edit fixes (the unit does not restart on it), 66 (EX_NOINPUT) when only files
/// it names are missing or unreadable, which may come right by themselves (a secret another unit
/// writes late in boot), so systemd retries.
/// - Parameters:
///   - access: whose access to the files is checked: the process's own unless told.
///   - checkStateDirectory: whether an unwritable `state_dir` is a mistake. Not for `run`: a
///     gateway whose card went read-only journals in memory and says so, rather than protect nothing.
func loadConfigOrExit(_ path: String, access: FileAccess = FileAccess(), checkStateDirectory: Bool = false) throws
    -> GatewayConfig
{
    let result = GatewayConfig.loadReportingAll(path: path)
    let files = result.files.filter { checkStateDirectory || $0.role != .directory }
    let fileProblems = ConfigFileCheck.problems(files, file: path, access: access)
    var problems = result.problems + fileProblems
    if let parsed = result.config {
        for code in parsed.alarm?.settings.codes ?? [] where !CodeChecker.isUsable(code.hash) {
            problems.append(
                ConfigError(
                    file: path, line: nil, column: nil, path: "alarm.codes",
                    message:
                        "the hash of code '\(code.name)' is not one libcrypt can check (mistyped or cut short?): no code "
                        + "could disarm the alarm. Make it again with 'mkpasswd -m yescrypt'"))
        }
        if parsed.backend != nil, parsed.backend?.tokenFile == nil,
            ProcessInfo.processInfo.environment[GatewayConfig.tokenEnvironmentVariable] == nil
        {
            problems.append(
                ConfigError(
                    file: path, line: nil, column: nil, path: "backend",
                    message:
                        "needs a token: backend.token_file, or the \(GatewayConfig.tokenEnvironmentVariable) environment variable"
                ))
        }
    }
    problems.sort { ($0.line ?? 0, $0.column ?? 0) < ($1.line ?? 0, $1.column ?? 0) }
    guard let config = result.config, problems.isEmpty else {
        for problem in problems { FileHandle.standardError.write(Data("error: \(problem)\n".utf8)) }
        if problems.count > 1 { FileHandle.standardError.write(Data("\(problems.count) mistakes in \(path)\n".utf8)) }
        throw ExitCode(problems.count == fileProblems.count ? 66 : 78)
    }
    do {
        // Read as the daemon reads them: a file that changed since the check above still fails here.
        _ = try config.mqttPassword()
        _ = try config.backendToken()
    } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(66)
    }
    return config
}
