import Foundation
import Yams

extension GatewayConfig {
    /// The environment variable that may hold the MQTT password instead of `mqtt.password_file`.
    public static let passwordEnvironmentVariable = "WIREGATE_MQTT_PASSWORD"

    /// A config checked to the end: the config when it holds no mistake, else every mistake found,
    /// and in both cases the files it names (checked where files are read, even when other keys
    /// hold mistakes: every mistake is reported at once).
    public struct ParseResult: Sendable {
        /// nil when `problems` is not empty.
        public var config: GatewayConfig?
        /// In file order.
        public var problems: [ConfigError]
        /// The files the document names, for the checks made where files are read; empty when its top
        /// level could not be read.
        public var files: [FileReference]

        /// A result with the given parts.
        /// - Parameters:
        ///   - config: the config, or nil when there are problems.
        ///   - problems: every mistake found, in file order.
        ///   - files: the files the document names.
        public init(config: GatewayConfig? = nil, problems: [ConfigError], files: [FileReference]) {
            self.config = config
            self.problems = problems
            self.files = files
        }
    }

    /// Decodes and validates config text.
    /// - Parameters:
    ///   - yaml: the YAML document.
    ///   - file: the name used in errors.
    /// - Throws: the first mistake, as `ConfigError`; `parseReportingAll` gives every one.
    ///   - defaultGatewayID: the id when the config names none (the host name's, where files are read).
    public static func parse(yaml: String, file: String, defaultGatewayID: String = "wiregate") throws(ConfigError)
        -> GatewayConfig
    {
        let result = parseReportingAll(yaml: yaml, file: file, defaultGatewayID: defaultGatewayID)
        guard let config = result.config else { throw result.problems[0] }
        return config
    }

    /// Decodes and validates config text, going on after a mistake to find the others: each
    /// section, and each board, is checked whatever the ones before it held.
    /// Within a section or a board, the first mistake ends that one's check.
    public static func parseReportingAll(yaml: String, file: String, defaultGatewayID: String = "wiregate")
        -> ParseResult
    {
        let problems = ProblemList()
        let config =
            problems.attempt { () throws(ConfigError) -> GatewayConfig? in
                try parseSections(yaml: yaml, file: file, defaultGatewayID: defaultGatewayID, problems: problems)
            } ?? nil
        let sorted = problems.errors.sorted { ($0.line ?? 0, $0.column ?? 0) < ($1.line ?? 0, $1.column ?? 0) }
        return ParseResult(config: sorted.isEmpty ? config : nil, problems: sorted, files: problems.files)
    }

    /// The mistakes found so far, while parsing goes on past them.
    final class ProblemList {
        private(set) var errors: [ConfigError] = []
        /// The files the document names, once its top level could be read.
        var files: [FileReference] = []

        /// The value `body` makes, or nil with its mistake recorded.
        func attempt<T>(_ body: () throws(ConfigError) -> T) -> T? {
            do throws(ConfigError) { return try body() } catch {
                errors.append(error)
                return nil
            }
        }
    }

    /// The document's sections, each checked whatever became of the others.
    /// - Returns: the config; nil when a section held a mistake (recorded in `problems`).
    /// - Throws: a mistake that leaves nothing else to check (not YAML, not a mapping).
    private static func parseSections(
        yaml: String, file: String, defaultGatewayID: String,
        problems: ProblemList
    ) throws(ConfigError) -> GatewayConfig? {
        let root: Yams.Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw ConfigError(file: file, line: nil, column: nil, path: "", message: "the file is empty")
            }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw Self.yamlError(error, file: file)
        } catch {
            throw ConfigError(file: file, line: nil, column: nil, path: "", message: "not valid YAML: \(error)")
        }
        let document = try ConfigNode(node: root, path: "", file: file).mapping()
        problems.files = Self.fileReferences(document)
        _ = problems.attempt { () throws(ConfigError) in
            try document.rejectUnknownKeys([
                "gateway", "mqtt", "boards", "log", "journal", "discovery", "unknown_boards", "defaults", "backend",
                "alarm", "metrics", "homeassistant"
            ])
        }

        let gateway = problems.attempt { () throws(ConfigError) in
            try Self.gateway(try document.optional("gateway")?.mapping(), defaultID: defaultGatewayID)
        }
        // The client id's default needs the gateway's id: a placeholder lets mqtt's own mistakes be found.
        let mqtt = problems.attempt { () throws(ConfigError) in
            try Self.mqtt(try document.required("mqtt").mapping(), gatewayID: gateway?.id ?? "gateway")
        }
        let log = problems.attempt { () throws(ConfigError) in
            var log = Log(level: "info")
            if let node = document.optional("log") {
                let section = try node.mapping()
                try section.rejectUnknownKeys(["level"])
                if let level = section.optional("level") {
                    log.level = try level.oneOf(["trace", "debug", "info", "notice", "warning", "error", "critical"])
                }
            }
            return log
        }
        let journal = problems.attempt { () throws(ConfigError) in try Self.journal(document.optional("journal")) }
        let discovery = problems.attempt { () throws(ConfigError) in try Self.discovery(document) }
        let adoptTemplate = problems.attempt { () throws(ConfigError) -> Board? in
            if let node = document.optional("defaults") {
                return try Self.boardSettings(try node.mapping(), name: "", match: BoardMatch(), known: [])
            } else if discovery?.adoptUnknown == true, let node = document.optional("unknown_boards") {
                throw node.error("adopt needs a 'defaults:' section with at least the protocol adopted boards speak")
            }
            return nil
        }

        var boards: [Board] = []
        var boardsValid = true
        if let boardNodes = problems.attempt({ () throws(ConfigError) -> [ConfigNode] in
            let boardsNode = try document.required("boards")
            let boardNodes = try boardsNode.sequence()
            guard !boardNodes.isEmpty || discovery?.adoptUnknown != false else {
                throw boardsNode.error("needs at least one board (or unknown_boards: adopt)")
            }
            return boardNodes
        }) {
            for node in boardNodes {
                let added: Void? = problems.attempt { () throws(ConfigError) in
                    let board = try Self.board(node)
                    if boards.contains(where: { $0.name == board.name }) {
                        throw (try node.mapping().required("name")).error(
                            "the board name '\(board.name)' is used twice")
                    }
                    if board.name == Self.timeTopicLevel {
                        throw (try node.mapping().required("name")).error(
                            "a board may not be named '\(Self.timeTopicLevel)' (<base>/<gateway>/\(Self.timeTopicLevel)/ holds the gateway's time corrections)"
                        )
                    }
                    if boards.contains(where: { $0.match == board.match }) {
                        throw (try node.mapping().required("match")).error(
                            "the same match is given to two boards: the second could never match")
                    }
                    boards.append(board)
                }
                if added == nil { boardsValid = false }
            }
        } else {
            boardsValid = false
        }
        let backend = problems.attempt { () throws(ConfigError) in
            try document.optional("backend").map { node throws(ConfigError) in try Self.backend(try node.mapping()) }
        }
        // The alarm reads and writes configured boards: checked against them once they are known.
        let alarm = problems.attempt { () throws(ConfigError) -> Alarm? in
            guard let node = document.optional("alarm") else { return nil }
            guard boardsValid else { return nil }
            if let clash = boardNodesNamed(Self.alarmTopicLevel, in: document) {
                throw clash.error(
                    "a board may not be named '\(Self.alarmTopicLevel)' with an alarm: section (its topics are the alarm's)"
                )
            }
            return try Self.alarm(try node.mapping(), boards: boards)
        }
        let metrics = problems.attempt { () throws(ConfigError) in
            try document.optional("metrics").map { node throws(ConfigError) in try Self.metrics(try node.mapping()) }
        }
        let homeAssistant = problems.attempt { () throws(ConfigError) -> HomeAssistant? in
            guard let node = document.optional("homeassistant") else { return nil }
            guard boardsValid else { return nil }
            for name in Self.homeAssistantReservedBoardNames {
                if let clash = boardNodesNamed(name, in: document) {
                    throw clash.error(
                        "a board may not be named '\(name)' with a homeassistant: section (<base>/<gateway>/\(name)/ holds the entities' states)"
                    )
                }
            }
            let settings = try Self.homeAssistant(try node.mapping(), boards: boards)
            try Self.checkAgainstAlarm(settings, alarm: alarm ?? nil, node: node)
            return settings
        }
        guard let gateway, let mqtt, let log, let journal, let discovery, let adoptTemplate, boardsValid, let backend,
            let alarm, let metrics, let homeAssistant
        else { return nil }
        var config = GatewayConfig(
            gateway: gateway, mqtt: mqtt, boards: boards, log: log, journal: journal,
            discovery: discovery, adoptTemplate: adoptTemplate, backend: backend)
        config.alarm = alarm
        config.metrics = metrics
        config.homeAssistant = homeAssistant
        config.files = problems.files
        return config
    }

    /// The keys that name files, and where: for the checks made where files are read.
    private static func fileReferences(_ document: ConfigMapping) -> [FileReference] {
        let keys: [(section: [String], key: String, role: FileReference.Role)] = [
            (["gateway"], "state_dir", .directory), (["mqtt"], "password_file", .secret),
            (["mqtt", "tls"], "ca_file", .certificate),
            (["mqtt", "tls"], "cert_file", .certificate), (["mqtt", "tls"], "key_file", .secret),
            (["backend"], "token_file", .secret), (["backend"], "ca_file", .certificate)
        ]
        var references = keys.compactMap { section, key, role -> FileReference? in
            var mapping: ConfigMapping? = document
            for name in section { mapping = try? mapping?.optional(name)?.mapping() }
            guard let node = mapping?.optional(key), let path = try? node.nonEmptyString(), path.hasPrefix("/") else {
                return nil
            }
            return FileReference(
                key: (section + [key]).joined(separator: "."), path: path, role: role,
                line: node.node.mark?.line, column: node.node.mark?.column)
        }
        if !references.contains(where: { $0.key == "gateway.state_dir" }) {
            // Not written: the default, checked all the same.
            references.insert(
                FileReference(key: "gateway.state_dir", path: defaultStateDirectory, role: .directory), at: 0)
        }
        return references
    }

    static func journal(_ node: ConfigNode?) throws(ConfigError) -> JournalSettings {
        var journal = JournalSettings()
        guard let node else { return journal }
        let section = try node.mapping()
        try section.rejectUnknownKeys([
            "commit_window_ms", "sync", "max_bytes", "max_age", "quarantine_max_count", "quarantine_max_bytes"
        ])
        if let count = section.optional("quarantine_max_count") {
            journal.quarantineMaxCount = try count.int(in: 0...10_000_000)
        }
        if let size = section.optional("quarantine_max_bytes") {
            journal.quarantineMaxBytes = try size.byteSize(in: (64 << 10)...(1 << 40))
        }
        if let size = section.optional("max_bytes") {
            journal.maxBytes = try size.byteSize(in: (64 << 10)...(1 << 40))
        }
        if let age = section.optional("max_age") {
            journal.maxAge = try age.duration(in: .seconds(60)...(.seconds(10 * 365 * 86400)))
        }
        if let window = section.optional("commit_window_ms") {
            journal.commitWindow = .milliseconds(try window.int(in: 0...60_000))
        }
        if let sync = section.optional("sync") {
            journal.sync = JournalSettings.Sync(rawValue: try sync.oneOf(["normal", "full"]))!
        }
        return journal
    }

    /// `discovery:` and `unknown_boards:`.
    static func discovery(_ document: ConfigMapping) throws(ConfigError) -> Discovery {
        var discovery = Discovery()
        if let node = document.optional("discovery") {
            let section = try node.mapping()
            try section.rejectUnknownKeys(["usb_ids", "hello", "hello_timeout"])
            if let list = section.optional("usb_ids") {
                let entries = try list.stringList()
                do throws(USBAllowList.Problem) {
                    discovery.usbIDs = try USBAllowList(entries)
                } catch let problem {
                    throw list.error(
                        "'\(problem.entry)' is not a USB vendor:product pair (four hex digits each, or vvvv:* for every product of a vendor)"
                    )
                }
            }
            if let hello = section.optional("hello") {
                guard let pattern = HelloPattern(try hello.nonEmptyString()) else {
                    throw hello.error(
                        "needs <name> once, where the board's name stands in the line, e.g. '#hello id=<name>'")
                }
                discovery.hello = pattern
            }
            if let timeout = section.optional("hello_timeout") {
                discovery.helloTimeout = try timeout.duration(in: .milliseconds(100)...(.seconds(60)))
            }
        }
        if let node = document.optional("unknown_boards") {
            discovery.adoptUnknown = try node.oneOf(["ignore", "adopt"]) == "adopt"
        }
        return discovery
    }

    /// The environment variable that may hold the backend token instead of `backend.token_file`.
    public static let tokenEnvironmentVariable = "WIREGATE_BACKEND_TOKEN"

    static func backend(_ section: ConfigMapping) throws(ConfigError) -> Backend {
        try section.rejectUnknownKeys(
            [
                "url", "token_file", "batch_size", "max_rate", "timeout", "ca_file", "retry_max", "compress",
                "allow_plain_http", "heartbeat_interval"
            ],
            hints: [
                "token":
                    "secrets are not written in the config: use token_file, or the \(tokenEnvironmentVariable) environment variable"
            ])
        let urlNode = try section.required("url")
        let text = try urlNode.nonEmptyString()
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            let host = url.host, !host.isEmpty
        else {
            throw urlNode.error(
                "must be an http:// or https:// URL, such as https://backend.example/ (the events go to <url>/api/gateway/events/)"
            )
        }
        // Checked before anything could log the URL.
        if url.user != nil || url.password != nil {
            throw urlNode.error(
                "must not hold credentials ('user:password@'): the token comes from token_file or \(tokenEnvironmentVariable)"
            )
        }
        let allowPlain = try section.optional("allow_plain_http")?.bool() ?? false
        if scheme == "http" && !allowPlain {
            throw urlNode.error(
                "http:// sends the token and every event in clear text: use https:// (with ca_file for a private CA), "
                    + "or set allow_plain_http: true for a lab")
        }
        var backend = Backend(url: text.hasSuffix("/") ? String(text.dropLast()) : text)
        backend.tokenFile = try Self.filePath(section.optional("token_file"))
        if let size = section.optional("batch_size") { backend.batchSize = try size.int(in: 1...5000) }
        if let rate = section.optional("max_rate") { backend.maxRate = try rate.int(in: 1...1_000_000) }
        if let timeout = section.optional("timeout") {
            backend.timeout = try timeout.duration(in: .seconds(1)...(.seconds(600)))
        }
        if let compress = section.optional("compress") { backend.compress = try compress.bool() }
        if let interval = section.optional("heartbeat_interval") {
            backend.heartbeatInterval = try interval.duration(in: .seconds(1)...(.seconds(3600)))
        }
        if let retry = section.optional("retry_max") {
            backend.retryMax = try retry.duration(in: .seconds(1)...(.seconds(3600)))
        }
        if let caNode = section.optional("ca_file") {
            guard scheme == "https" else { throw caNode.error("a CA file is for an https:// url") }
            backend.caFile = try Self.filePath(caNode)
        }
        return backend
    }

    // MARK: - Sections

    /// `gateway.state_dir` when the config does not say.
    public static let defaultStateDirectory = "/var/lib/wiregate"

    /// The gateway id a host name gives when the config names none: its first label, as one clean
    /// topic level, so that two gateways installed from the same package do not share an identity,
    /// a client id and a topic tree.
    /// - Returns: nil for a name that names no machine (empty, `(none)`, `localhost`).
    public static func gatewayID(fromHostName hostName: String) -> String? {
        let label = hostName.split(separator: ".").first.map(String.init) ?? ""
        guard !["", "(none)", "localhost"].contains(label.lowercased()), let level = Topic.sanitisedLevel(label),
            Topic.problem(inConfiguredLevel: level) == nil
        else { return nil }
        return level
    }

    /// Host names every machine of a kind starts with: a gateway named after one is likely to meet
    /// another of the same name on the broker.
    public static func isGenericHostName(_ id: String) -> Bool {
        ["raspberrypi", "debian", "ubuntu", "raspberry", "pi", "dietpi", "armbian"].contains(id.lowercased())
    }

    /// `gateway:`; the whole section may be left out.
    static func gateway(_ section: ConfigMapping?, defaultID: String) throws(ConfigError) -> GatewaySettings {
        try section?.rejectUnknownKeys(["id", "state_dir"])
        var settings = GatewaySettings(id: defaultID, stateDirectory: defaultStateDirectory, idIsDefault: true)
        if let idNode = section?.optional("id") {
            settings.id = try idNode.nonEmptyString()
            settings.idIsDefault = false
            if let problem = Topic.problem(inConfiguredLevel: settings.id) {
                throw idNode.error("the gateway id \(problem)")
            }
        }
        settings.stateDirectory = try Self.filePath(section?.optional("state_dir")) ?? defaultStateDirectory
        return settings
    }

    static func mqtt(_ section: ConfigMapping, gatewayID: String) throws(ConfigError) -> MQTT {
        try section.rejectUnknownKeys(
            [
                "host", "port", "base_topic", "keepalive", "client_id", "username", "password_file",
                "protocol", "inflight", "reconnect_min", "reconnect_max", "connect_timeout", "tls",
                "health_interval"
            ],
            hints: [
                "password":
                    "secrets are not written in the config: use password_file, or the \(passwordEnvironmentVariable) environment variable"
            ])
        let host = try section.optional("host")?.nonEmptyString() ?? "127.0.0.1"
        let tls = try section.optional("tls").map { node throws(ConfigError) in try Self.tls(try node.mapping()) }
        let port = try section.optional("port")?.int(in: 1...65535) ?? (tls == nil ? 1883 : 8883)
        let baseNode = section.optional("base_topic")
        let baseTopic = try baseNode?.string() ?? "wiregate"
        if let problem = Topic.problem(inConfiguredTopic: baseTopic) {
            throw (baseNode ?? section.owner).error("the base topic \(problem)")
        }
        let keepalive = try section.optional("keepalive")?.int(in: 5...65535) ?? 10
        let clientID = try section.optional("client_id")?.nonEmptyString() ?? "wiregate-\(gatewayID)"
        let username = try section.optional("username")?.nonEmptyString()
        let passwordFile = try Self.filePath(section.optional("password_file"))
        let version =
            try section.optional("protocol").map { node throws(ConfigError) in
                MQTT.ProtocolVersion(rawValue: try node.oneOf(["5", "3.1.1"]))!
            } ?? .v5
        let inflight = try section.optional("inflight")?.int(in: 1...65535) ?? 256
        let reconnectMin =
            try section.optional("reconnect_min")?.duration(in: .milliseconds(10)...(.seconds(3600)))
            ?? .milliseconds(500)
        let maxNode = section.optional("reconnect_max")
        let reconnectMax = try maxNode?.duration(in: .milliseconds(10)...(.seconds(3600))) ?? .seconds(30)
        guard reconnectMax >= reconnectMin else {
            throw (maxNode ?? section.owner).error("reconnect_max must not be below reconnect_min")
        }
        let connectTimeout =
            try section.optional("connect_timeout")?.duration(in: .milliseconds(100)...(.seconds(600))) ?? .seconds(10)
        var mqtt = MQTT(
            host: host, port: port, baseTopic: baseTopic, keepalive: keepalive, clientID: clientID,
            username: username, passwordFile: passwordFile, protocolVersion: version, inflight: inflight,
            reconnectMin: reconnectMin, reconnectMax: reconnectMax, connectTimeout: connectTimeout, tls: tls)
        if let interval = section.optional("health_interval") {
            mqtt.healthInterval = try interval.duration(in: .seconds(1)...(.seconds(3600)))
        }
        return mqtt
    }

    static func tls(_ section: ConfigMapping) throws(ConfigError) -> MQTT.TLS {
        let never =
            "the broker's certificate is always verified; for a private CA give ca_file, for an address its certificate does not list give server_name"
        try section.rejectUnknownKeys(
            ["ca_file", "cert_file", "key_file", "server_name"],
            hints: [
                "insecure": never, "verify": never, "tls_insecure": never, "cert_reqs": never,
                "cafile": "ca_file", "certfile": "cert_file", "keyfile": "key_file",
                "version": "TLS 1.2 is the oldest accepted, 1.3 is used when the broker offers it"
            ])
        var tls = MQTT.TLS()
        tls.caFile = try Self.filePath(section.optional("ca_file"))
        let certNode = section.optional("cert_file")
        let keyNode = section.optional("key_file")
        tls.certFile = try Self.filePath(certNode)
        tls.keyFile = try Self.filePath(keyNode)
        if tls.certFile != nil && tls.keyFile == nil {
            throw (certNode ?? section.owner).error("a client certificate needs its key: add key_file")
        }
        if tls.keyFile != nil && tls.certFile == nil {
            throw (keyNode ?? section.owner).error("a key needs its certificate: add cert_file")
        }
        if let nameNode = section.optional("server_name") {
            let name = try nameNode.nonEmptyString()
            guard !name.contains(where: { $0.isWhitespace || $0 == "/" }) else {
                throw nameNode.error(
                    "must be a host name such as broker.house.lan, the name in the broker's certificate")
            }
            tls.serverName = name
        }
        return tls
    }

    /// The path in `node`: whether it can be read is checked where files are read (see `files`).
    /// It must be absolute: a relative one would depend on the directory the daemon starts in
    /// (systemd's is `/`, a shell's is wherever `check-config` was run).
    static func filePath(_ node: ConfigNode?) throws(ConfigError) -> String? {
        guard let node else { return nil }
        let path = try node.nonEmptyString()
        guard path.hasPrefix("/") else {
            throw node.error("'\(path)' must be an absolute path: the daemon's working directory is not the config's")
        }
        return path
    }

    /// Baud rates termios can set on Linux.
    /// The one list of them: `termiosSpeeds`' rates, in order.
    public static let baudRates = termiosSpeeds.keys.sorted()

    /// Each baud rate Linux's termios can set, and its `speed_t` constant (what `cfsetspeed` takes).
    public static let termiosSpeeds: [Int: speed_t] = [
        1200: speed_t(B1200), 2400: speed_t(B2400), 4800: speed_t(B4800), 9600: speed_t(B9600), 19200: speed_t(B19200),
        38400: speed_t(B38400), 57600: speed_t(B57600), 115200: speed_t(B115200), 230400: speed_t(B230400),
        460800: speed_t(B460800), 500000: speed_t(B500000), 921600: speed_t(B921600), 1000000: speed_t(B1000000),
        2000000: speed_t(B2000000)
    ]

    /// The keys of a board entry besides `name` and `match`; `defaults:` takes these.
    static let boardSettingKeys = [
        "baud", "protocol", "options", "classes", "latest", "commands", "hupcl", "settle", "max_line", "reopen_max",
        "silence_timeout"
    ]

    static func board(_ node: ConfigNode) throws(ConfigError) -> Board {
        let section = try node.mapping()
        try section.rejectUnknownKeys(["name", "match"] + boardSettingKeys)
        let nameNode = try section.required("name")
        let name = try nameNode.nonEmptyString()
        if let problem = Topic.problem(inConfiguredLevel: name) { throw nameNode.error("the board name \(problem)") }
        let match = try Self.match(try section.required("match"))
        return try boardSettings(section, name: name, match: match, known: ["name", "match"])
    }

    static func match(_ node: ConfigNode) throws(ConfigError) -> BoardMatch {
        let section = try node.mapping()
        try section.rejectUnknownKeys(
            ["path", "serial", "hello", "usb_path", "vid", "pid"],
            hints: [
                "vendor": "unknown key (did you mean 'vid'?)", "product": "unknown key (did you mean 'pid'?)",
                "port": "unknown key (did you mean 'usb_path'?)"
            ])
        var match = BoardMatch()
        if let pathNode = section.optional("path") {
            let path = try pathNode.nonEmptyString()
            guard path.hasPrefix("/") else {
                throw pathNode.error("must be an absolute device path, such as /dev/ttyACM0")
            }
            guard section.entries.count == 1 else {
                throw pathNode.error(
                    "a fixed path is not combined with other keys: use serial, hello, usb_path, vid or pid instead to find the board through udev"
                )
            }
            match.path = path
            return match
        }
        match.serial = try section.optional("serial")?.nonEmptyString()
        match.hello = try section.optional("hello")?.nonEmptyString()
        match.usbPath = try section.optional("usb_path")?.nonEmptyString()
        for (key, keyPath) in [("vid", \BoardMatch.vendorID), ("pid", \BoardMatch.productID)] {
            guard let idNode = section.optional(key) else { continue }
            // YAML reads 2341 as a number: accept it, but compare as four hex digits.
            let text = try idNode.string().lowercased()
            guard USBAllowList.isUSBID(Substring(text)) else {
                throw idNode.error("must be four hex digits, such as 2341")
            }
            match[keyPath: keyPath] = text
        }
        guard section.entries.count > 0 else {
            throw node.error("needs at least one of: path, serial, hello, usb_path, vid, pid")
        }
        return match
    }

    /// The settings of a board entry (or of `defaults:`, with an empty name and match).
    static func boardSettings(_ section: ConfigMapping, name: String, match: BoardMatch, known: [String])
        throws(ConfigError) -> Board
    {
        try section.rejectUnknownKeys(known + boardSettingKeys)
        let baudNode = section.optional("baud")
        let baud = try baudNode?.int(in: 1...4_000_000) ?? 115_200
        guard baudRates.contains(baud) else {
            throw baudNode!.error(
                "\(baud) is not a baud rate the serial driver can set (one of \(baudRates.map(String.init).joined(separator: ", ")))"
            )
        }

        let protocolNode = try section.required("protocol")
        let protocolName = try protocolNode.string()
        guard let decoderType = LineProtocols.decoderType(named: protocolName) else {
            throw protocolNode.error(
                "unknown protocol '\(protocolName)' (expected one of \(LineProtocols.names.joined(separator: ", ")))")
        }
        let decoder = try decoderType.init(options: try section.optional("options")?.mapping())

        var rules: [(String, EventClass)] = []
        if let classes = try section.optional("classes")?.mapping() {
            for (key, value) in classes.entries {
                guard !key.isEmpty else { throw value.error("a class needs a subtopic or pattern as its key") }
                rules.append((key, EventClass(rawValue: try value.oneOf(EventClass.allCases.map(\.rawValue)))!))
            }
        }

        var latest: [String] = []
        if let list = section.optional("latest") {
            for item in try list.sequence() {
                let key = try item.nonEmptyString()
                if ClassRules(rules).exact[key] == .critical {
                    throw item.error(
                        "'\(key)' is critical: critical events are never coalesced, only telemetry can be 'latest'")
                }
                latest.append(key)
            }
        }

        var commands: [String] = []
        if let list = section.optional("commands") {
            for item in try list.sequence() {
                let command = try item.nonEmptyString()
                guard !command.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" }) else {
                    throw item.error("a command is one line: no newline or NUL")
                }
                commands.append(command)
            }
        }

        let hupcl = try section.optional("hupcl")?.bool() ?? true
        let settle = try section.optional("settle")?.duration(in: .zero...(.seconds(60))) ?? .seconds(2)
        let maxLine = try section.optional("max_line")?.int(in: 16...1_048_576) ?? 1024
        let reopenMax =
            try section.optional("reopen_max")?.duration(in: .milliseconds(100)...(.seconds(3600))) ?? .seconds(30)
        let silence = try section.optional("silence_timeout")?.duration(in: .seconds(1)...(.seconds(86400)))
        return Board(
            name: name, match: match, baud: baud, protocolName: protocolName, decoder: decoder,
            classes: ClassRules(rules), latest: latest,
            commands: CommandPolicy(commands, separators: decoder.commandSeparators), hupcl: hupcl, settle: settle,
            maxLineLength: maxLine, reopenMax: reopenMax, silenceTimeout: silence)
    }

    static func yamlError(_ error: YamlError, file: String) -> ConfigError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            let text = [context.map { "\($0.text)" }, problem].compactMap { $0 }.joined(separator: ": ")
            return ConfigError(
                file: file, line: mark.line, column: mark.column, path: "", message: "not valid YAML: \(text)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigError(
                file: file, line: context.mark.line, column: context.mark.column, path: "",
                message: "key(s) written twice: \(duplicates.joined(separator: ", "))")
        default:
            return ConfigError(file: file, line: nil, column: nil, path: "", message: "not valid YAML: \(error)")
        }
    }

}
