extension GatewayConfig {
    /// The `alarm:` section: the panel's settings, and the ways it is driven without a network.
    public struct Alarm: Sendable, Equatable {
        /// A keypad or key-switch board: which of its keys carries the action and which the code.
        public struct Keypad: Sendable, Equatable {
            /// `board`: the keypad's configured board name, which must be in `boards:`.
            public var board: String
            /// The key whose value is the action (`ARM_AWAY`, `ARM_HOME`, `ARM_NIGHT`, `ARM_VACATION`, `DISARM`).
            public var actionKey: String
            /// The key whose value is the code: never journaled nor published.
            public var codeKey: String

            /// A keypad on `board`.
            /// - Parameters:
            ///   - board: the board's name.
            ///   - actionKey: `action_key`; `action` by default.
            ///   - codeKey: `code_key`; `code` by default.
            public init(board: String, actionKey: String = "action", codeKey: String = "code") {
                self.board = board
                self.actionKey = actionKey
                self.codeKey = codeKey
            }
        }

        /// The panel's zones, sirens, codes and timings, for `AlarmStateMachine`.
        public var settings: AlarmSettings
        /// `keypads`: the boards that arm and disarm with a code, without the network; none by default.
        public var keypads: [Keypad]
        /// Whether `alarm/set` may disarm over a broker connection without TLS (a code in clear
        /// text on the network): off unless the config says so.
        public var allowDisarmWithoutTLS: Bool
        /// `socket`: the CLI's Unix socket.
        public var socket: String = defaultSocket
        /// In systemd's runtime directory for the service (`RuntimeDirectory=wiregate`).
        public static let defaultSocket = "/run/wiregate/alarm.sock"

        /// An `alarm:` section.
        /// - Parameters:
        ///   - settings: the panel's settings.
        ///   - keypads: the keypad boards; none by default.
        ///   - allowDisarmWithoutTLS: whether `alarm/set` may disarm over plain TCP; false by default.
        public init(settings: AlarmSettings, keypads: [Keypad] = [], allowDisarmWithoutTLS: Bool = false) {
            self.settings = settings
            self.keypads = keypads
            self.allowDisarmWithoutTLS = allowDisarmWithoutTLS
        }
    }

    /// The topic level of the alarm's own topics, `<base>/<gateway>/alarm/...`.
    public static let alarmTopicLevel = "alarm"

    /// The topic level of the gateway's own time messages (`<base>/<gateway>/time/corrections`):
    /// never a board's name.
    public static let timeTopicLevel = "time"

    /// Where the correction records of events sent with a wrong clock go (not retained).
    public var timeCorrectionsTopic: String { gatewayTopicPrefix + Self.timeTopicLevel + "/corrections" }

    /// The `name:` node of the board entry called `name`, if any.
    static func boardNodesNamed(_ name: String, in document: ConfigMapping) -> ConfigNode? {
        guard let boards = try? document.optional("boards")?.sequence() else { return nil }
        for board in boards {
            if let node = try? board.mapping().optional("name"), (try? node.string()) == name { return node }
        }
        return nil
    }

    /// The prefixes of the crypt(3) hashes libcrypt checks: yescrypt, SHA-512, SHA-256 and bcrypt.
    static let codeHashPrefixes = ["$y$", "$gy$", "$7$", "$6$", "$5$", "$2b$", "$2y$"]

    /// `alarm:`, checked against the boards it names (their names, and the sirens' lines against
    /// their commands allow-list).
    static func alarm(_ section: ConfigMapping, boards: [Board]) throws(ConfigError) -> Alarm {
        try section.rejectUnknownKeys(
            [
                "zones", "sirens", "codes", "keypads", "exit_delay", "entry_delay", "siren_timeout", "siren_repeat",
                "after_timeout", "restore", "lockout", "code_arm_required", "allow_disarm_without_tls", "socket"
            ],
            hints: [
                "code":
                    "codes are kept only as hashes: 'codes: [{ name: NAME, hash: HASH }]', the hash from 'mkpasswd -m yescrypt'",
                "pin": "codes are kept only as hashes: 'codes: [{ name: NAME, hash: HASH }]'"
            ])
        let boardNames = boards.map(\.name)
        func board(_ node: ConfigNode) throws(ConfigError) -> String {
            let name = try node.nonEmptyString()
            guard boardNames.contains(name) else {
                throw node.error(
                    "no board named '\(name)' in boards: (the alarm uses configured boards only: \(boardNames.joined(separator: ", ")))"
                )
            }
            return name
        }

        var settings = AlarmSettings(zones: [])
        let zonesNode = try section.required("zones")
        for item in try zonesNode.sequence() {
            let zone = try Self.zone(try item.mapping(), board: board)
            if settings.zones.contains(where: { $0.name == zone.name }) {
                throw (try item.mapping().required("name")).error("the zone name '\(zone.name)' is used twice")
            }
            settings.zones.append(zone)
        }
        guard !settings.zones.isEmpty else { throw zonesNode.error("needs at least one zone") }

        if let list = section.optional("sirens") {
            for item in try list.sequence() {
                let siren = try item.mapping()
                try siren.rejectUnknownKeys(["board", "on", "off"])
                let boardNode = try siren.required("board")
                let name = try board(boardNode)
                let policy = boards.first { $0.name == name }!.commands
                var lines: [String] = []
                for key in ["on", "off"] {
                    let node = try siren.required(key)
                    let line = try node.nonEmptyString()
                    // The alarm writes through the same allow-list as MQTT: nothing else reaches a board.
                    guard policy.allows(line) else {
                        throw node.error(
                            "'\(line)' is not in the commands allow-list of board '\(name)': add it there (the alarm writes through it)"
                        )
                    }
                    lines.append(line)
                }
                settings.sirens.append(AlarmSettings.Siren(board: name, on: lines[0], off: lines[1]))
            }
        }

        if let list = section.optional("codes") {
            for item in try list.sequence() {
                let code = try item.mapping()
                try code.rejectUnknownKeys(
                    ["name", "hash"],
                    hints: ["code": "write the hash, never the code: 'mkpasswd -m yescrypt' makes it"])
                let nameNode = try code.required("name")
                let name = try nameNode.nonEmptyString()
                if settings.codes.contains(where: { $0.name == name }) {
                    throw nameNode.error("the code name '\(name)' is used twice")
                }
                let hashNode = try code.required("hash")
                let hash = try hashNode.nonEmptyString()
                // Never echo what is there: it may be a code written by mistake.
                guard codeHashPrefixes.contains(where: hash.hasPrefix), hash.split(separator: "$").count >= 3 else {
                    throw hashNode.error(
                        "is not a crypt(3) hash: make one with 'mkpasswd -m yescrypt' (Debian's whois package) and quote it"
                    )
                }
                settings.codes.append(AlarmSettings.Code(name: name, hash: hash))
            }
        }

        settings.exitDelay = try Self.perMode(section.optional("exit_delay"))
        settings.entryDelay = try Self.perMode(section.optional("entry_delay"))
        if let node = section.optional("siren_timeout") {
            settings.sirenTimeout = try node.duration(in: .seconds(1)...(.seconds(3600)))
        }
        if let node = section.optional("siren_repeat") {
            settings.sirenRepeat = try node.duration(in: .milliseconds(500)...(.seconds(600)))
        }
        if let node = section.optional("after_timeout") {
            settings.afterTimeout = .init(
                rawValue: try node.oneOf(AlarmSettings.AfterTimeout.allCases.map(\.rawValue)))!
        }
        if let node = section.optional("restore") {
            settings.restore = .init(rawValue: try node.oneOf(AlarmSettings.Restore.allCases.map(\.rawValue)))!
        }
        if let node = section.optional("lockout") {
            let lockout = try node.mapping()
            try lockout.rejectUnknownKeys(["attempts", "duration"])
            if let attempts = lockout.optional("attempts") { settings.lockoutAttempts = try attempts.int(in: 1...100) }
            if let duration = lockout.optional("duration") {
                settings.lockoutDuration = try duration.duration(in: .seconds(1)...(.seconds(86400)))
            }
        }
        settings.codeArmRequired = try section.optional("code_arm_required")?.bool() ?? false
        if settings.codes.isEmpty {
            throw (section.optional("codes") ?? zonesNode).error(
                "the alarm needs at least one code under 'codes:' (disarming always takes one)")
        }

        var keypads: [Alarm.Keypad] = []
        if let list = section.optional("keypads") {
            for item in try list.sequence() {
                let keypad = try item.mapping()
                try keypad.rejectUnknownKeys(["board", "action_key", "code_key"])
                var entry = Alarm.Keypad(board: try board(try keypad.required("board")))
                if let node = keypad.optional("action_key") { entry.actionKey = try node.nonEmptyString() }
                if let node = keypad.optional("code_key") { entry.codeKey = try node.nonEmptyString() }
                keypads.append(entry)
            }
        }
        let allowPlain = try section.optional("allow_disarm_without_tls")?.bool() ?? false
        var alarm = Alarm(settings: settings, keypads: keypads, allowDisarmWithoutTLS: allowPlain)
        if let node = section.optional("socket") {
            let path = try node.nonEmptyString()
            guard path.hasPrefix("/"), path.utf8.count < 100 else {
                throw node.error("must be an absolute path shorter than 100 bytes (a Unix socket's limit)")
            }
            alarm.socket = path
        }
        return alarm
    }

    /// One zone entry.
    private static func zone(
        _ zone: ConfigMapping, board: (ConfigNode) throws(ConfigError) -> String
    ) throws(ConfigError) -> AlarmSettings.Zone {
        try zone.rejectUnknownKeys(["name", "board", "key", "open", "closed", "type", "bypass", "when_unavailable"])
        let nameNode = try zone.required("name")
        let name = try nameNode.nonEmptyString()
        let boardName = try board(try zone.required("board"))
        let key = try zone.required("key").nonEmptyString()
        let openWhen: AlarmSettings.Zone.OpenWhen
        switch (zone.optional("open"), zone.optional("closed")) {
        case (let open?, nil):
            // One value or a list of them.
            let values: [String]
            if case .scalar = open.node { values = [try open.nonEmptyString()] } else { values = try open.stringList() }
            guard !values.isEmpty else { throw open.error("needs at least one value that means open") }
            openWhen = .oneOf(Set(values))
        case (nil, let closed?):
            openWhen = .not(try closed.string())
        case (_?, let closed?):
            throw closed.error(
                "give 'open' (the values that mean open) or 'closed' (the one value that does not), not both")
        case (nil, nil):
            throw nameNode.error(
                "zone '\(name)' needs 'open: [values]' or 'closed: value' to tell an open contact from a closed one")
        }
        let kindNode = try zone.required("type")
        let kind = AlarmSettings.Zone.Kind(
            rawValue: try kindNode.oneOf(AlarmSettings.Zone.Kind.allCases.map(\.rawValue)))!
        var bypassed: Set<ArmMode> = []
        if let list = zone.optional("bypass") {
            for item in try list.sequence() {
                bypassed.insert(ArmMode(rawValue: try item.oneOf(ArmMode.allCases.map(\.rawValue)))!)
            }
            if kind == .always, !bypassed.isEmpty {
                throw list.error("an 'always' zone (smoke, tamper, panic) is never bypassed")
            }
        }
        let unavailable = try zone.optional("when_unavailable")?.oneOf(["open", "ignore"]) ?? "open"
        return AlarmSettings.Zone(
            name: name, board: boardName, key: key, openWhen: openWhen, kind: kind, bypassedIn: bypassed,
            opensWhenUnavailable: unavailable == "open")
    }

    /// A delay for every mode (`30s`), or per mode (`{ away: 30s, night: 10s }`, the others none).
    private static func perMode(_ node: ConfigNode?) throws(ConfigError) -> [ArmMode: Duration] {
        guard let node else { return [:] }
        let range = Duration.zero...(.seconds(600))
        if case .scalar = node.node {
            let delay = try node.duration(in: range)
            return Dictionary(uniqueKeysWithValues: ArmMode.allCases.map { ($0, delay) })
        }
        let section = try node.mapping()
        try section.rejectUnknownKeys(ArmMode.allCases.map(\.rawValue))
        var delays: [ArmMode: Duration] = [:]
        for mode in ArmMode.allCases {
            if let value = section.optional(mode.rawValue) { delays[mode] = try value.duration(in: range) }
        }
        return delays
    }
}
