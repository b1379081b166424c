import ArgumentParser
import CMalloc
import Foundation
import Glibc
import Logging
import Wiregate
import WiregateCore

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the gateway until SIGTERM or SIGINT."
    )

    @OptionGroup var options: ConfigOption

    func run() async throws {
        // Two malloc arenas, not eight per core: each thread's arena keeps what it freed, and
        // the daemon's memory bound is on that (private dirty memory). Early, before most threads
        // exist.
        mallopt(M_ARENA_MAX, 2)
        let config = try loadConfigOrExit(options.config)
        let password = try config.mqttPassword()
        let backendToken = try config.backendToken()
        let level = Logger.Level(rawValue: config.log.level) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardOutput(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "wiregate")
        logger[metadataKey: "gateway"] = "\(config.gateway.id)"
        logger.info("starting", metadata: ["config": "\(options.config)", "boards": "\(config.boards.count)"])
        if config.gateway.idIsDefault {
            logger.notice(
                "gateway.id is not set: the host name names this gateway; set it to keep the id if the host is renamed",
                metadata: ["id": "\(config.gateway.id)"])
        }
        for (key, path) in config.secretFilesReadableByOthers {
            logger.warning(
                "other users can read this secret: chmod o-r it (0600, or 0640 with the service's group)",
                metadata: ["key": "\(key)", "file": "\(path)"])
        }
        let gateway: Gateway
        do {
            gateway = try Gateway(config: config, password: password, backendToken: backendToken, logger: logger)
        } catch {
            logger.critical(
                "cannot start", metadata: ["state_dir": "\(config.gateway.stateDirectory)", "error": "\(error)"])
            throw ExitCode(1)
        }
        try await gateway.run()
        // Every board, configured and adopted.
        let commands = gateway.router.counters
        for board in gateway.directory.all {
            let counters = board.counters
            logger.info(
                "board totals",
                metadata: [
                    "board": "\(board.board.name)", "lines": "\(counters.lines)", "events": "\(counters.events)",
                    "malformed": "\(counters.malformed)", "discarded": "\(counters.rejected.values.reduce(0, +))",
                    "commands_written": "\(counters.commandsWritten)",
                    "commands_not_written": "\(counters.commandsNotWritten)",
                    "commands_refused": "\(commands.refused[board.board.name, default: 0])"
                ])
        }
        // Events only: "published" counts an event sent again after a lost connection twice, so it
        // is never below "acknowledged"; the status messages' PUBACKs are apart.
        let mqtt = gateway.mqtt.counters
        logger.info(
            "stopped",
            metadata: [
                "published": "\(mqtt.published)", "acknowledged": "\(mqtt.acknowledged)",
                "status_acknowledged": "\(mqtt.statusAcknowledged)",
                "commands_unroutable": "\(commands.unroutable)", "commands_retained_refused": "\(commands.retained)",
                "commands_dropped": "\(mqtt.messagesDropped)"
            ])
    }
}
