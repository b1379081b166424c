import Foundation

/// The whole configuration, decoded and validated.
///
/// Built only by `GatewayConfig.load(path:)` / `parse(yaml:file:)`, so a value of
/// this type is always valid: the daemon starts nothing until it has one.
public struct GatewayConfig: Sendable {
    /// `gateway:`, the gateway's id and state directory; the section may be left out.
    public var gateway: GatewaySettings
    /// `mqtt:`, the local broker; the section is required.
    public var mqtt: MQTT
    /// `boards:`, in the order written; may be empty only under `unknown_boards: adopt`.
    public var boards: [Board]
    /// `log:`, the log's verbosity.
    public var log: Log
    /// `journal:`, the SQLite journal's commits and bounds; every key has a default.
    public var journal: JournalSettings
    /// `discovery:` and `unknown_boards:`, how boards are found through udev.
    public var discovery: Discovery
    /// `defaults:`: the settings of boards adopted under `unknown_boards: adopt` (name and match empty).
    public var adoptTemplate: Board?
    /// `backend:`: where the journal is uploaded; nil when there is no backend.
    public var backend: Backend?
    /// `alarm:`: the gateway's own alarm panel; nil when there is none.
    public var alarm: Alarm? = nil
    /// `metrics:`: the Prometheus endpoint; nil (off) when there is none.
    public var metrics: Metrics? = nil
    /// `homeassistant:`: MQTT discovery for Home Assistant; nil (off) when there is none.
    public var homeAssistant: HomeAssistant? = nil
    /// Every file the config names (secrets, certificates), with the place that names it: they are
    /// checked, all at once, where files are read (not here: parsing does no I/O).
    public var files: [FileReference] = []

    /// A file named by a key of the config.
    public struct FileReference: Sendable, Equatable {
        /// What the file is for, which decides the checks made on it.
        public enum Role: Sendable, Equatable {
            /// A password, a token or a private key: its mode matters, and an empty one is a mistake.
            case secret
            /// A certificate or CA bundle.
            case certificate
            /// A directory the daemon writes in (`gateway.state_dir`).
            case directory
        }

        /// The key path, e.g. `mqtt.password_file`.
        public var key: String
        /// The absolute path written in the config (or the default `gateway.state_dir`).
        public var path: String
        /// What the file is for.
        public var role: Role
        /// The 1-based line of the key's value; nil for a default not written in the config.
        public var line: Int?
        /// The 1-based column of the key's value; nil for a default not written in the config.
        public var column: Int?

        /// A reference to `path`, named by `key`.
        /// - Parameters:
        ///   - key: the key path, e.g. `mqtt.tls.ca_file`.
        ///   - path: the file's absolute path.
        ///   - role: what the file is for.
        ///   - line: the key's line, or nil when it is not written.
        ///   - column: the key's column, or nil when it is not written.
        public init(key: String, path: String, role: Role, line: Int? = nil, column: Int? = nil) {
            self.key = key
            self.path = path
            self.role = role
            self.line = line
            self.column = column
        }

        /// A mistake about this file, placed at the key that names it.
        public func error(file: String, _ message: String) -> ConfigError {
            ConfigError(file: file, line: line, column: column, path: key, message: message)
        }
    }

    /// The Django backend of the house, which keeps the history (see deploy/django).
    public struct Backend: Sendable, Equatable {
        /// The base URL, without a trailing slash: events go to `<url>/api/gateway/events/`.
        public var url: String
        /// The API token's file; `WIREGATE_BACKEND_TOKEN` is the alternative.
        public var tokenFile: String?
        /// Events per request, critical ones in batches of their own.
        public var batchSize = 500
        /// Most events per second while draining a backlog (a week of it must not fill a 4G uplink); nil: no limit.
        public var maxRate: Int?
        /// A request that has no answer by then is retried.
        public var timeout = Duration.seconds(30)
        /// A private CA for an https URL.
        public var caFile: String?
        /// Longest wait between retries while the backend cannot be reached.
        public var retryMax = Duration.seconds(60)
        /// gzip bodies once the backend says it accepts them; off for a proxy that mishandles them.
        public var compress = true
        /// `backend.heartbeat_interval`: how often the health heartbeat is posted, besides each broker change (1s...1h); default 60 s.
        public var heartbeatInterval = Duration.seconds(60)

        /// A backend at `url` (no trailing slash), every other setting on its default.
        /// - Parameter url: the base URL, `http://` or `https://`.
        public init(url: String) { self.url = url }
    }

    /// Finding boards through udev: which USB devices are boards, and how they say who they are.
    public struct Discovery: Sendable {
        /// `discovery.usb_ids`.
        public var usbIDs = USBAllowList.defaults
        /// `unknown_boards: adopt`: an allowed device that no entry matches becomes a board named from its identity.
        public var adoptUnknown = false
        /// `discovery.hello`: the line a board's firmware prints after reset to name itself.
        public var hello = HelloPattern("#hello id=<name>")!
        /// How long to listen for the hello line after the settle time.
        public var helloTimeout = Duration.seconds(3)

        /// The defaults: the built-in USB ids, unknown boards ignored, `#hello id=<name>` within 3 s.
        public init() {}
    }

    /// The board adopted under `name` (from `defaults:`), or nil when adopting is off.
    /// - Parameter identity: what the device said of itself, which named it; nil when not known.
    public func adoptedBoard(named name: String, identity: BoardIdentity? = nil) -> Board? {
        guard discovery.adoptUnknown, var board = adoptTemplate else { return nil }
        board.name = name
        board.adoptedIdentity = identity
        return board
    }

    /// Whether any board is found through udev rather than at a fixed path.
    public var needsDiscovery: Bool { discovery.adoptUnknown || boards.contains { $0.match.needsDiscovery } }

    /// `gateway:`: who this gateway is and where it keeps its state.
    public struct GatewaySettings: Sendable, Equatable {
        /// This gateway's id: one topic level, and the prefix of every event id.
        public var id: String
        /// Where the daemon keeps its state: the journal, `journal.sqlite`.
        public var stateDirectory: String
        /// Whether `id` is the default (the host name), not written in the config.
        public var idIsDefault = false
    }

    /// `mqtt:`: the broker the events are published to and the commands come from.
    public struct MQTT: Sendable, Equatable {
        /// `mqtt.protocol`: the raw value is the word in the config, `5` or `3.1.1`.
        public enum ProtocolVersion: String, Sendable, Equatable {
            /// MQTT 5, falling back to 3.1.1 when the broker refuses it.
            case v5 = "5"
            case v311 = "3.1.1"
        }
        /// `mqtt.host`, a host name or address; default `127.0.0.1`.
        public var host: String
        /// `mqtt.port`, 1...65535; default 1883, or 8883 with `tls:`.
        public var port: Int
        /// `mqtt.base_topic`, the first level(s) of every topic, no wildcard and no leading `$`; default `wiregate`.
        public var baseTopic: String
        /// `mqtt.keepalive`, in seconds, 5...65535; default 10, so a cut cable is noticed in about 15 s.
        public var keepalive: Int
        /// `mqtt.client_id`; default `wiregate-<gateway.id>`.
        public var clientID: String
        /// `mqtt.username`; nil connects without one.
        public var username: String?
        /// The password file, when the config names one; `WIREGATE_MQTT_PASSWORD` is the alternative.
        public var passwordFile: String?
        /// `mqtt.protocol`; default `.v5`.
        public var protocolVersion: ProtocolVersion
        /// Most QoS 1 messages awaiting PUBACK at once.
        public var inflight: Int
        /// `mqtt.reconnect_min`, the first reconnect delay, doubled after each failure (10ms...1h); default 500 ms.
        public var reconnectMin: Duration
        /// `mqtt.reconnect_max`, the longest reconnect delay, not below `reconnectMin` (10ms...1h); default 30 s.
        public var reconnectMax: Duration
        /// How long to wait for CONNACK before giving up on an attempt (a stopped broker accepts TCP but never answers).
        public var connectTimeout: Duration
        /// TLS to the broker; nil: plain TCP.
        public var tls: TLS?
        /// `mqtt.health_interval`: how often `<base>/<gateway>/health` is published, besides each change (1s...1h); default 60 s.
        public var healthInterval = Duration.seconds(60)

        /// TLS 1.2 or later, the broker's certificate always verified.
        public struct TLS: Sendable, Equatable {
            /// The CA certificates (PEM) the broker's certificate must chain to; nil: the system's (/etc/ssl/certs).
            public var caFile: String?
            /// This gateway's certificate (PEM, its chain may follow), for a broker that requires one.
            public var certFile: String?
            /// The private key of `certFile` (PEM, unencrypted: the daemon starts unattended).
            public var keyFile: String?
            /// The name the broker's certificate must carry, when `host` is an address that it does not list.
            public var serverName: String?

            /// TLS settings; by default none of the files, and the name checked is `host`'s.
            /// - Parameters:
            ///   - caFile: the CA bundle's path, nil for the system's.
            ///   - certFile: the client certificate's path, nil for none.
            ///   - keyFile: the client key's path, given with `certFile`.
            ///   - serverName: the name to verify, nil for `host`.
            public init(
                caFile: String? = nil, certFile: String? = nil, keyFile: String? = nil, serverName: String? = nil
            ) {
                self.caFile = caFile
                self.certFile = certFile
                self.keyFile = keyFile
                self.serverName = serverName
            }
        }
    }

    /// One entry of `boards:` (or the `defaults:` of adopted boards): how it is found, read and written to.
    public struct Board: Sendable {
        /// `name`, required: the board's topic level, unique among the boards.
        public var name: String
        /// How the board is found: a fixed path, or what udev says of it.
        public var match: BoardMatch
        /// `baud`, one of the rates termios can set (`GatewayConfig.baudRates`); default 115200.
        public var baud: Int
        /// `protocol`, required: the line protocol's name (`kv`, `json`, `mysensors`, `influx`, `raw`).
        public var protocolName: String
        /// The decoder of `protocol`, built from the board's `options:`.
        public var decoder: any LineDecoder
        /// `classes`: which subtopics are critical; unmatched ones are telemetry.
        public var classes: ClassRules
        /// Subtopics (or glob patterns) of telemetry for which a replay sends only the newest value.
        public var latest: [String]
        /// `commands`: the lines MQTT may write to the board; empty by default, so nothing is written.
        public var commands: CommandPolicy
        /// Whether closing the port drops DTR (termios HUPCL); off keeps an Arduino from resetting.
        public var hupcl: Bool
        /// How long to ignore the board after opening the port (most Arduinos reset on open).
        public var settle: Duration
        /// `max_line`, the longest line in bytes (16...1048576); longer ones are discarded and counted; default 1024.
        public var maxLineLength: Int
        /// Longest wait between attempts to reopen a port that went away.
        public var reopenMax: Duration
        /// `silence_timeout`: a board that sends no line for this long is marked offline (and an
        /// alarm zone on it counts as open); nil, the default, never does.
        public var silenceTimeout: Duration? = nil
        /// What an adopted board's device said of itself (its serial number, hello name or port
        /// path); nil for a configured board, whose `match:` says it.
        public var adoptedIdentity: BoardIdentity? = nil

        /// Who the board is, whatever its name or tty: the serial number, else the hello name,
        /// else the USB port path its `match:` gives (or its device gave, when adopted); nil for a
        /// board known only by a fixed path or USB ids. Naming an adopted board in the config with
        /// the same `match:` keeps its identity.
        public var identity: BoardIdentity? {
            if let serial = match.serial { return BoardIdentity(source: .serial, value: serial) }
            if let hello = match.hello { return BoardIdentity(source: .hello, value: hello) }
            if let usbPath = match.usbPath { return BoardIdentity(source: .usbPath, value: usbPath) }
            return adoptedIdentity
        }
    }

    /// `journal:`: how the SQLite journal commits, and how large and old it may grow.
    public struct JournalSettings: Sendable, Equatable {
        /// `journal.sync`: the raw value is the word in the config.
        public enum Sync: String, Sendable, Equatable {
            /// SQLite `synchronous=NORMAL`: in WAL mode, a power cut may lose the last commits, never corrupt.
            case normal
            /// SQLite `synchronous=FULL`: every commit is on the card before it returns.
            case full
        }
        /// Telemetry is grouped into one transaction per window; critical events commit at once.
        public var commitWindow: Duration
        /// `journal.sync`; default `.normal`.
        public var sync: Sync
        /// The journal's bound on disk; past it the oldest telemetry is dropped, critical last.
        public var maxBytes: Int64
        /// Events older than this are dropped, telemetry and critical alike.
        public var maxAge: Duration
        /// The quarantine's own bound (events a destination can never take): past either, its
        /// oldest rows go, counted. It is not part of `maxBytes`, so it never costs an event.
        public var quarantineMaxCount: Int
        /// `journal.quarantine_max_bytes`, in bytes (64 KiB...1 TiB); default 16 MiB.
        public var quarantineMaxBytes: Int64

        /// Journal settings; the defaults are the config's when `journal:` is left out.
        /// - Parameters:
        ///   - commitWindow: `commit_window_ms`; default 2000 ms, zero commits every event at once.
        ///   - sync: `sync`; default `.normal`.
        ///   - maxBytes: `max_bytes`; default 256 MiB.
        ///   - maxAge: `max_age`; default 30 days.
        ///   - quarantineMaxCount: `quarantine_max_count`; default 10000 events.
        ///   - quarantineMaxBytes: `quarantine_max_bytes`; default 16 MiB.
        public init(
            commitWindow: Duration = .milliseconds(2000), sync: Sync = .normal,
            maxBytes: Int64 = 256 << 20, maxAge: Duration = .seconds(30 * 86400),
            quarantineMaxCount: Int = 10_000, quarantineMaxBytes: Int64 = 16 << 20
        ) {
            self.commitWindow = commitWindow
            self.sync = sync
            self.maxBytes = maxBytes
            self.maxAge = maxAge
            self.quarantineMaxCount = quarantineMaxCount
            self.quarantineMaxBytes = quarantineMaxBytes
        }
    }

    /// `log:`: what the daemon logs.
    public struct Log: Sendable, Equatable {
        /// `log.level`: `trace`, `debug`, `info`, `notice`, `warning`, `error` or `critical`; default `info`.
        public var level: String
    }

    /// The topic of an event from `board`, with `levels` already sanitised.
    public func topic(board: String, levels: [String]) -> String {
        ([mqtt.baseTopic, gateway.id, board] + levels).joined(separator: "/")
    }

    /// `<base>/<gateway>/status`, retained `online`/`offline`, the last will.
    public var gatewayStatusTopic: String { gatewayTopicPrefix + "status" }

    /// `<base>/<gateway>/alarm/state`, the alarm's state, retained, as Home Assistant names it.
    public var alarmStateTopic: String { gatewayTopicPrefix + Self.alarmTopicLevel + "/state" }

    /// `<base>/<gateway>/alarm/set`, where Home Assistant's alarm panel sends its commands.
    public var alarmCommandTopic: String { gatewayTopicPrefix + Self.alarmTopicLevel + "/set" }

    /// `<base>/<gateway>/`, the prefix of everything this gateway publishes and listens to.
    public var gatewayTopicPrefix: String { "\(mqtt.baseTopic)/\(gateway.id)/" }

    /// `<base>/<gateway>/<board>/status`, retained `online`/`offline`.
    public func boardStatusTopic(_ board: String) -> String { boardTopicPrefix(board) + "status" }

    /// `<base>/<gateway>/<board>/`, the prefix of everything a board's events and commands use.
    public func boardTopicPrefix(_ board: String) -> String { gatewayTopicPrefix + "\(board)/" }
}

/// Which class an event gets, from the board's `classes:` mapping.
///
/// Keys are subtopics (`door`, `env/temperature`) or glob patterns (`motion*`, `*`).
/// An exact key wins over patterns; patterns are tried in the order written; an
/// event that matches nothing is telemetry.
public struct ClassRules: Sendable, Equatable {
    /// The class of each subtopic written as such (no `*`, `?` or `[`); these win over patterns.
    public var exact: [String: EventClass]
    /// Glob patterns and their class, tried in the order written.
    public var patterns: [(pattern: String, eventClass: EventClass)]

    /// Rules from the `classes:` entries, in the order written; a key holding `*`, `?` or `[` is a pattern.
    /// - Parameter rules: subtopic or pattern, and its class; empty makes every event telemetry.
    public init(_ rules: [(String, EventClass)] = []) {
        exact = [:]
        patterns = []
        for (key, eventClass) in rules {
            if key.contains(where: { "*?[".contains($0) }) {
                patterns.append((key, eventClass))
            } else {
                exact[key] = eventClass
            }
        }
    }

    /// The class of an event on `subtopic`: its exact rule, else the first pattern it matches, else telemetry.
    /// - Parameter subtopic: the levels below the board, such as `env/temperature`.
    /// - Returns: the event's class.
    public func eventClass(forSubtopic subtopic: String) -> EventClass {
        classify(subtopic) ?? .telemetry
    }

    func classify(_ subtopic: String) -> EventClass? {
        if let eventClass = exact[subtopic] { return eventClass }
        for rule in patterns where Glob.matches(rule.pattern, subtopic) { return rule.eventClass }
        return nil
    }

    /// Whether both have the same exact rules and the same patterns in the same order.
    public static func == (lhs: ClassRules, rhs: ClassRules) -> Bool {
        lhs.exact == rhs.exact && lhs.patterns.elementsEqual(rhs.patterns, by: { $0 == $1 })
    }
}

extension GatewayConfig.Board {
    /// Whether a replay of this subtopic's telemetry sends only its newest value.
    public func isLatest(_ subtopic: String) -> Bool {
        latest.contains { $0 == subtopic || Glob.matches($0, subtopic) }
    }
}

/// The lines that may be written to a board: its `commands:` list.
///
/// Entries are exact lines; an entry holding `*` is a pattern in which `*` stands for a value
/// (`LED=*`): printable text without the board protocol's separators (`;` for most) and without
/// controls, so that a value can never carry a second command. Everything else is refused.
public struct CommandPolicy: Sendable, Equatable {
    /// The `commands:` entries as written: exact lines, and patterns holding `*`.
    public var allowed: [String]
    /// What a `*` never matches besides controls (see `LineDecoder.commandSeparators`).
    public var separators: Set<Unicode.Scalar>

    /// A policy allowing `allowed`.
    /// - Parameters:
    ///   - allowed: the `commands:` entries.
    ///   - separators: what a `*` never matches, the protocol's `commandSeparators`; `;` by default.
    public init(_ allowed: [String], separators: Set<Unicode.Scalar> = [";"]) {
        self.allowed = allowed
        self.separators = separators
    }

    /// Whether `line` may be written to the board: it equals an entry, or matches a pattern.
    /// - Parameter line: the command, without a line ending.
    /// - Returns: false for an empty line, one holding CR, LF or NUL, or one no entry allows.
    public func allows(_ line: String) -> Bool {
        // By scalar: "\r\n" is one Character, equal to neither "\r" nor "\n", and would pass a
        // Character test, then write two lines to the board.
        guard !line.isEmpty, !line.unicodeScalars.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" }) else {
            return false
        }
        return allowed.contains { $0.contains("*") ? matches(pattern: $0, line) : $0 == line }
    }

    /// Whether a `*` may stand for this character of a command.
    private func isValue(_ scalar: Unicode.Scalar) -> Bool {
        !Topic.isForbidden(scalar) && !separators.contains(scalar)
    }

    /// `*`-only glob matching over scalars (`?`, `[` are literal in commands), each `*` matching
    /// only value characters.
    private func matches(pattern: String, _ text: String) -> Bool {
        let parts = pattern.unicodeScalars.split(separator: "*", omittingEmptySubsequences: false).map(Array.init)
        let text = Array(text.unicodeScalars)
        // parts[0] is a prefix, parts.last a suffix; the ones between come in order, wildcards around them.
        guard let first = parts.first, let last = parts.last, text.starts(with: first) else { return false }
        var position = first.count
        let end = text.count - last.count
        guard end >= position, text[end...].elementsEqual(last) else { return false }
        for part in parts.dropFirst().dropLast() {
            // The earliest occurrence whose wildcard span before it holds only value characters.
            var found: Int?
            var start = position
            while start + part.count <= end {
                if text[start..<(start + part.count)].elementsEqual(part) { found = start; break }
                guard isValue(text[start]) else { return false }
                start += 1
            }
            guard let found else { return false }
            position = found + part.count
        }
        return text[position..<end].allSatisfy(isValue)
    }
}

/// Shell-style matching (`*`, `?`, `[…]`), through the C library's fnmatch.
enum Glob {
    static func matches(_ pattern: String, _ text: String) -> Bool {
        return fnmatch(pattern, text, 0) == 0
    }
}
