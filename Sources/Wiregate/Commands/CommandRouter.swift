import Logging
import Synchronization
import WiregateCore

/// Commands from MQTT to boards: `<base>/<gateway>/<board>/set`, and the topics a
/// protocol adds (MySensors' `<prefix>-in/...`).
///
/// A command is written only when the board's `commands:` list allows the exact
/// line; anything else is refused, logged and counted, never written.
public final class CommandRouter: MQTTMessageHandler {
    /// What the router refused since the daemon started. The commands it passed on are counted
    /// by the boards' readers (written, or not written: the board offline).
    public struct Counters: Sendable, Equatable {
        /// Commands that named no known board or topic.
        public var unroutable = 0
        /// Commands refused because they came retained.
        public var retained = 0
        /// Commands for a board refused by its allow-list, its protocol or their encoding, by board.
        public var refused: [String: Int] = [:]
    }

    private let config: GatewayConfig
    private let boards: BoardDirectory
    /// The alarm, whose sirens' boards take no command from MQTT while it is not disarmed.
    private let alarm: AlarmPanel?
    private let logger: Logger
    private let metrics: GatewayMetrics
    private let counterState = Mutex(Counters())

    /// Makes the router; the MQTT sink subscribes to its `filters` and hands it each message.
    /// - Parameters:
    ///   - config: a validated config: the boards' topics, protocols and `commands:` allow-lists.
    ///   - boards: where commands are written, adopted boards included.
    ///   - logger: where each refused command is logged.
    ///   - alarm: the alarm panel, when there is one (see `handle`).
    ///   - metrics: where each board's refused commands are counted.
    public init(
        config: GatewayConfig, boards: BoardDirectory, logger: Logger, alarm: AlarmPanel? = nil,
        metrics: GatewayMetrics = .none
    ) {
        self.alarm = alarm
        self.metrics = metrics
        self.config = config
        self.boards = boards
        self.logger = logger
    }

    /// The topic filters to subscribe to: each configured board's, and with
    /// `unknown_boards: adopt`, a `+` level for boards adopted later.
    public var filters: [String] {
        // Overlapping subscriptions could deliver a command twice (a siren toggled twice):
        // what the `+` filters cover is not subscribed per board as well.
        var wildcard: [String] = []
        if let template = config.adoptTemplate, config.discovery.adoptUnknown {
            wildcard = ["set"] + template.decoder.commandFilters
        }
        var filters = wildcard.map { config.boardTopicPrefix("+") + $0 }
        for board in config.boards {
            let prefix = config.boardTopicPrefix(board.name)
            filters += (["set"] + board.decoder.commandFilters).filter { !wildcard.contains($0) }.map { prefix + $0 }
        }
        return filters
    }

    /// A snapshot of the refusals, read from any thread; logged at the stop.
    public var counters: Counters { counterState.withLock { $0 } }

    /// Routes one received message; refuses it unless it is allowed.
    ///
    /// A command is an action at a moment, never a state: a retained one (a siren switched on by a
    /// retained message would go on again at every reconnect, after the user switched it off) is
    /// refused and counted, whatever it says.
    public func handle(topic: String, payload: [UInt8], retained isRetained: Bool = false) async {
        if isRetained {
            counterState.withLock { $0.retained += 1 }
            logger.warning(
                "command refused: it was published retained, and a command is an action, never a state",
                metadata: [
                    "topic": "\(topic)"
                ])
            return
        }
        let gatewayPrefix = config.gatewayTopicPrefix
        guard topic.hasPrefix(gatewayPrefix) else { return refuseUnroutable(topic, "outside this gateway's tree") }
        let levels = topic.dropFirst(gatewayPrefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard let boardName = levels.first, let reader = boards[String(boardName)] else {
            return refuseUnroutable(topic, "no such board")
        }
        let board = reader.board
        guard let text = String(validating: payload, as: UTF8.self) else {
            refuse(board.name)
            logger.warning(
                "command refused: payload is not UTF-8 text", metadata: ["board": "\(board.name)", "topic": "\(topic)"])
            return
        }
        let below = Array(levels.dropFirst())
        let line: String?
        if below == ["set"] {
            line = text
        } else {
            line = board.decoder.commandLine(levels: below, payload: text)
        }
        guard let line else {
            refuse(board.name)
            logger.warning(
                "command refused: not a command topic of this board's protocol",
                metadata: ["board": "\(board.name)", "topic": "\(topic)"])
            return
        }
        // What a log may say of a command: the whole line when the commands list has it as it is;
        // only its name (before '=', ' ' or ';') when a pattern's value is in it, or when it was
        // refused, since a value may be a code (a keypad's PIN) and a refusal may be a mistyped one.
        let exact = board.commands.allowed.contains(line)
        let named = String(line.prefix { $0 != "=" && $0 != " " && $0 != ";" }.prefix(40))
        guard board.commands.allows(line) else {
            refuse(board.name)
            // Its name only if the list knows that name: a bare refused line may be a mistyped code.
            let known = board.commands.allowed.contains { $0.hasPrefix(named) }
            logger.warning(
                "command refused: not in the board's commands list",
                metadata: [
                    "board": "\(board.name)", "command": "\(known ? named + "…" : "(not a listed command)")",
                    "length": "\(line.utf8.count)"
                ])
            return
        }
        // A siren's lines are the alarm's alone: a broker client must not silence a triggered
        // alarm (or sound a siren the alarm would never stop). While the alarm is not disarmed,
        // a siren board takes nothing from MQTT at all: a pattern in its list (`SIREN=*`) would
        // let `SIREN=0` through, and a `RESET` would silence it as well.
        let sirens = config.alarm?.settings.sirens.filter { $0.board == board.name } ?? []
        let armed = alarm.map { $0.status.state != .disarmed } ?? false
        if !sirens.isEmpty && (armed || sirens.contains { $0.on == line || $0.off == line }) {
            refuse(board.name)
            logger.warning(
                "command refused: a siren's board, and the alarm is not disarmed or the line is its siren line",
                metadata: ["board": "\(board.name)"])
            return
        }
        let shown = exact ? line : named + "=…"
        if await reader.write(commandLine: line) {
            logger.debug("command written", metadata: ["board": "\(board.name)", "command": "\(shown)"])
        } else {
            logger.warning(
                "command not written: the board is offline", metadata: ["board": "\(board.name)", "command": "\(shown)"]
            )
        }
    }

    private func refuse(_ board: String) {
        counterState.withLock { $0.refused[board, default: 0] += 1 }
        metrics.board(board).commands.increment(.refused)
    }

    private func refuseUnroutable(_ topic: String, _ reason: String) {
        counterState.withLock { $0.unroutable += 1 }
        logger.warning("command refused: \(reason)", metadata: ["topic": "\(topic)"])
    }
}
