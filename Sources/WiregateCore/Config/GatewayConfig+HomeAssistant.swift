extension GatewayConfig {
    /// `homeassistant:`: MQTT discovery, so that every board is a Home Assistant device.
    public struct HomeAssistant: Sendable, Equatable {
        /// How the configs are announced.
        public enum DiscoveryMode: String, Sendable, Equatable {
            /// `<prefix>/<component>/<node_id>/<object_id>/config`, one per entity: every release.
            case component
            /// `<prefix>/device/<node_id>/config`, one per device: Home Assistant 2024.11 and later.
            case device
        }

        /// `prefix`: Home Assistant's discovery prefix; default `homeassistant`.
        public var prefix = "homeassistant"
        /// `discovery`: `component` (default) or `device`.
        public var mode = DiscoveryMode.component
        /// `status_topic`: where Home Assistant says `online` when it (re)starts; default `<prefix>/status`.
        public var statusTopic = "homeassistant/status"
        /// `republish_delay`: the longest random wait before answering Home Assistant's `online`, so
        /// that many gateways do not answer at once; default 5 s.
        public var republishDelay = Duration.seconds(5)
        /// `entities`: the config's rules, tried before `EntityRule.defaults`.
        public var rules: [EntityRule] = []
        /// `defaults: false` leaves the built-in rules out: only the config's keys are announced.
        public var useDefaults = true

        /// Every setting on its default: discovery on `homeassistant/`, the built-in rules.
        public init() {}

        /// The rules in the order they are tried: the config's, then (unless turned off) the defaults.
        public var allRules: [EntityRule] { rules + (useDefaults ? EntityRule.defaults : []) }
    }

    /// The topic level below the gateway of the entities' retained states,
    /// `<base>/<gateway>/state/<board>/<key>`: a board may not take this name with `homeassistant:`.
    public static let entityStateTopicLevel = "state"

    /// `<base>/<gateway>/state/<board>/<subtopic>`, the retained last value Home Assistant reads.
    public func entityStateTopic(board: String, subtopic: String) -> String {
        gatewayTopicPrefix + Self.entityStateTopicLevel + "/\(board)/\(subtopic)"
    }

    /// `<base>/<gateway>/health`, the retained health report.
    public var healthTopic: String { gatewayTopicPrefix + "health" }

    /// Board names a `homeassistant:` section reserves: a board's state topics start with its
    /// name, so these would read the gateway's own topics.
    public static let homeAssistantReservedBoardNames = [entityStateTopicLevel]

    static let entityRuleKeys = [
        "board", "key", "ignore", "component", "device_class", "on", "off", "unit", "state_class",
        "entity_category", "name", "icon", "command_on", "command_off", "press", "event_types"
    ]

    /// `homeassistant:`, its command lines checked against the boards they name.
    static func homeAssistant(_ section: ConfigMapping, boards: [Board]) throws(ConfigError) -> HomeAssistant {
        try section.rejectUnknownKeys(["prefix", "discovery", "status_topic", "republish_delay", "entities", "defaults"]
        )
        var settings = HomeAssistant()
        if let node = section.optional("prefix") {
            let prefix = try node.nonEmptyString()
            if let problem = Topic.problem(inConfiguredTopic: prefix) { throw node.error("the prefix \(problem)") }
            settings.prefix = prefix
        }
        settings.statusTopic = settings.prefix + "/status"
        if let node = section.optional("status_topic") {
            let topic = try node.nonEmptyString()
            if let problem = Topic.problem(inConfiguredTopic: topic) { throw node.error("the topic \(problem)") }
            settings.statusTopic = topic
        }
        if let node = section.optional("discovery") {
            settings.mode = HomeAssistant.DiscoveryMode(rawValue: try node.oneOf(["component", "device"]))!
        }
        if let node = section.optional("republish_delay") {
            settings.republishDelay = try node.duration(in: .zero...(.seconds(600)))
        }
        settings.useDefaults = try section.optional("defaults")?.bool() ?? true
        if let list = section.optional("entities") {
            for item in try list.sequence() {
                settings.rules.append(try entityRule(try item.mapping(), boards: boards))
            }
        }
        return settings
    }

    /// The alarm's siren lines are the alarm's alone (the router refuses them from the broker): a
    /// rule that would send one could never work, and says so here rather than at the first press.
    static func checkAgainstAlarm(_ settings: HomeAssistant, alarm: Alarm?, node: ConfigNode) throws(ConfigError) {
        guard let sirens = alarm?.settings.sirens, let list = try node.mapping().optional("entities") else { return }
        for (rule, item) in zip(settings.rules, try list.sequence()) where rule.component.takesCommands {
            let lines = [rule.commandOn, rule.commandOff, rule.press].compactMap { $0 }
            if let siren = sirens.first(where: {
                $0.board == rule.board && (lines.contains($0.on) || lines.contains($0.off))
            }) {
                throw (try item.mapping().required("board")).error(
                    "'\(siren.on)'/'\(siren.off)' are the alarm's siren lines on board '\(siren.board)': only the alarm writes them (Home Assistant shows the siren through the alarm panel)"
                )
            }
        }
    }

    private static func entityRule(_ entry: ConfigMapping, boards: [Board]) throws(ConfigError) -> EntityRule {
        try entry.rejectUnknownKeys(
            entityRuleKeys,
            hints: [
                "payload_on": "write the values that mean on as 'on: [open]' (several may be given)",
                "payload_off": "write the values that mean off as 'off: [closed]' (several may be given)",
                "unit_of_measurement": "the unit is 'unit:'", "type": "the entity's platform is 'component:'"
            ])
        let keyNode = try entry.required("key")
        var rule = EntityRule(key: try keyNode.nonEmptyString())
        if let problem = Topic.problem(inConfiguredTopic: rule.key.replacingOccurrences(of: "*", with: "x")) {
            throw keyNode.error("the key \(problem)")
        }
        if ["status", "set"].contains(rule.key) {
            throw keyNode.error(
                "a board's own '\(rule.key)' key is published as '_\(rule.key)' (\(rule.key) is the gateway's topic): write key: _\(rule.key)"
            )
        }
        let boardNode = entry.optional("board")
        rule.board = try boardNode?.nonEmptyString()
        if let boardNode, let name = rule.board, !EntityRule.isPattern(name),
            !boards.contains(where: { $0.name == name })
        {
            throw boardNode.error(
                "no board named '\(name)' in boards: (\(boards.map(\.name).joined(separator: ", "))); a glob (hall-*) also matches adopted boards"
            )
        }
        rule.ignore = try entry.optional("ignore")?.bool() ?? false
        let componentNode = entry.optional("component")
        if let componentNode {
            let names = EntityComponent.allCases.filter { $0 != .alarmControlPanel }.map(\.rawValue)
            rule.component = EntityComponent(rawValue: try componentNode.oneOf(names))!
        } else if !rule.ignore {
            throw (try entry.required("component")).error("is required (unless the rule says ignore: true)")
        }
        rule.deviceClass = try entry.optional("device_class")?.nonEmptyString()
        rule.onValues = try entry.optional("on").map { node throws(ConfigError) in try node.stringList() }
        rule.offValues = try entry.optional("off").map { node throws(ConfigError) in try node.stringList() }
        rule.unit = try entry.optional("unit")?.nonEmptyString()
        if let node = entry.optional("state_class") {
            rule.stateClass = try node.oneOf(["measurement", "total", "total_increasing"])
        }
        if let node = entry.optional("entity_category") {
            rule.entityCategory = try node.oneOf(["diagnostic", "config"])
        }
        rule.name = try entry.optional("name")?.nonEmptyString()
        if let node = entry.optional("icon") {
            let icon = try node.nonEmptyString()
            guard icon.hasPrefix("mdi:") else { throw node.error("'\(icon)' is not an icon: write mdi:NAME") }
            rule.icon = icon
        }
        rule.eventTypes = try entry.optional("event_types").map { node throws(ConfigError) in try node.stringList() }
        if rule.component == .event && !rule.ignore && rule.eventTypes?.isEmpty != false {
            // Home Assistant drops an event whose type it was not told of: with none, every one.
            let component: ConfigNode = try entry.required("component")
            let place = entry.optional("event_types") ?? component
            throw place.error(
                "an event needs its event_types: the values it fires (event_types: [ring]); Home Assistant drops any other"
            )
        }
        if rule.entityCategory == "config" && !rule.component.takesCommands {
            throw (try entry.required("entity_category")).error(
                "config is for an entity that sets something (a switch, a siren, a button); a \(rule.component.rawValue) may be diagnostic"
            )
        }

        // Each key only where it means something: a mistake here would be silently ignored otherwise.
        let only: [(key: String, components: [EntityComponent])] = [
            ("on", [.binarySensor]), ("off", [.binarySensor]), ("unit", [.sensor]), ("state_class", [.sensor]),
            ("command_on", [.switch, .siren]), ("command_off", [.switch, .siren]), ("press", [.button]),
            ("event_types", [.event])
        ]
        for (key, components) in only {
            if let node = entry.optional(key), !components.contains(rule.component) || rule.ignore {
                throw node.error(
                    "is for a \(components.map(\.rawValue).joined(separator: " or ")), not a \(rule.ignore ? "rule that ignores" : rule.component.rawValue)"
                )
            }
        }
        guard rule.component.takesCommands, !rule.ignore else { return rule }
        // Commands: for one configured board, each line in its allow-list (nothing Home Assistant
        // sends bypasses it; the router checks again at every command).
        guard let boardNode, let name = rule.board, !EntityRule.isPattern(name) else {
            throw (boardNode ?? keyNode).error(
                "a \(rule.component.rawValue) writes to one board: give its exact name in board:")
        }
        guard let board = boards.first(where: { $0.name == name }) else {
            throw boardNode.error(
                "no board named '\(name)' in boards: (\(boards.map(\.name).joined(separator: ", ")))")
        }
        let lines = rule.component == .button ? ["press"] : ["command_on", "command_off"]
        for key in lines {
            let node = try entry.required(key)
            let line = try node.nonEmptyString()
            guard board.commands.allows(line) else {
                throw node.error(
                    "'\(line)' is not in the commands allow-list of board '\(name)': add it there (Home Assistant writes through it)"
                )
            }
            switch key {
            case "press": rule.press = line
            case "command_on": rule.commandOn = line
            default: rule.commandOff = line
            }
        }
        return rule
    }
}
