/// The alarm's states, spelled as Home Assistant's `alarm_control_panel` spells them, so that
/// the retained state maps one to one onto its entity.
public enum AlarmState: String, Sendable, Codable, CaseIterable {
    case disarmed
    /// The exit delay runs: the house is left, nothing but `always` zones trigger yet.
    case arming
    case armedHome = "armed_home"
    case armedAway = "armed_away"
    case armedNight = "armed_night"
    case armedVacation = "armed_vacation"
    /// The entry delay runs: a code now disarms, else the alarm triggers when it ends.
    case pending
    /// The sirens sound until the siren timeout or a disarm.
    case triggered
}

/// The ways of arming, each with its own delays and bypassed zones.
public enum ArmMode: String, Sendable, Codable, CaseIterable {
    case home, away, night, vacation

    /// The state the alarm is in once armed this way.
    public var armedState: AlarmState {
        switch self {
        case .home: .armedHome
        case .away: .armedAway
        case .night: .armedNight
        case .vacation: .armedVacation
        }
    }
}

/// The `alarm:` section of the config, as the alarm uses it (loaded and checked by the config
/// loader; the codes' hashes are checked by the gateway, never here).
public struct AlarmSettings: Sendable, Equatable {
    /// One contact or detector: a board's key whose value says open or closed.
    public struct Zone: Sendable, Equatable {
        /// How an opening is answered.
        public enum Kind: String, Sendable, CaseIterable {
            /// Triggers at once when armed.
            case instant
            /// Starts the entry delay when armed (the door one comes in by).
            case delayed
            /// Waits while an entry delay runs, else triggers at once (the hall's motion detector).
            case follower
            /// Triggers in every state, disarmed too (smoke, tamper, panic).
            case always
        }

        /// When a value means open.
        public enum OpenWhen: Sendable, Equatable {
            /// One of these values.
            case oneOf(Set<String>)
            /// Any value but this one.
            case not(String)

            /// Whether `value` means open.
            public func isOpen(_ value: String) -> Bool {
                switch self {
                case .oneOf(let values): values.contains(value)
                case .not(let closed): value != closed
                }
            }
        }

        /// The zone's name: in events, the status and the logs.
        public var name: String
        /// The board the zone's key comes from.
        public var board: String
        /// The key (the decoded event's subtopic), e.g. `door`.
        public var key: String
        /// Which values mean open: the zone's `open:` values, or anything but its `closed:` value.
        public var openWhen: OpenWhen
        /// The zone's `type`: how an opening is answered.
        public var kind: Kind
        /// The modes in which the zone is ignored (a motion detector when at home).
        public var bypassedIn: Set<ArmMode>
        /// Whether the board going offline or silent while armed counts as an opening: a cut
        /// cable is what an intruder does. True unless the config says otherwise.
        public var opensWhenUnavailable: Bool

        /// A zone; not bypassed in any mode and opened by its board going away, unless told otherwise.
        /// - Parameters:
        ///   - name: the zone's name.
        ///   - board: the board its key comes from.
        ///   - key: the subtopic whose value is read.
        ///   - openWhen: which values mean open.
        ///   - kind: how an opening is answered.
        ///   - bypassedIn: the modes in which it is ignored; none by default.
        ///   - opensWhenUnavailable: whether its board going offline counts as an opening; true by default.
        public init(
            name: String, board: String, key: String, openWhen: OpenWhen, kind: Kind,
            bypassedIn: Set<ArmMode> = [], opensWhenUnavailable: Bool = true
        ) {
            self.name = name
            self.board = board
            self.key = key
            self.openWhen = openWhen
            self.kind = kind
            self.bypassedIn = bypassedIn
            self.opensWhenUnavailable = opensWhenUnavailable
        }
    }

    /// A board that sounds: the lines that switch it on and off (both in its commands allow-list).
    public struct Siren: Sendable, Equatable {
        /// The board that sounds, by its configured name.
        public var board: String
        /// The line that switches it on, written again every `sirenRepeat` while triggered.
        public var on: String
        /// The line that switches it off, at a disarm or when the siren timeout ends.
        public var off: String

        /// A siren on `board`; its lines are checked against the board's allow-list by the config loader.
        /// - Parameters:
        ///   - board: the board's name.
        ///   - on: the line that switches it on.
        ///   - off: the line that switches it off.
        public init(board: String, on: String, off: String) {
            self.board = board
            self.on = on
            self.off = off
        }
    }

    /// A named code, kept only as a crypt(3) hash.
    public struct Code: Sendable, Equatable {
        /// Who the code is; in the event of a disarm it made.
        public var name: String
        /// The crypt(3) hash (`$y$…` from `mkpasswd -m yescrypt`).
        public var hash: String

        /// A code named `name`; the hash is not checked here.
        /// - Parameters:
        ///   - name: who the code is.
        ///   - hash: its crypt(3) hash.
        public init(name: String, hash: String) {
            self.name = name
            self.hash = hash
        }
    }

    /// What the alarm does when the siren timeout ends.
    public enum AfterTimeout: String, Sendable, CaseIterable {
        /// Armed again as before, with the zones still open left out until they close.
        case rearm
        case disarm
    }

    /// The state after a restart.
    public enum Restore: String, Sendable, CaseIterable {
        /// The one before it (a triggered alarm sounds again, for the siren time that was left).
        case last
        case disarmed
    }

    /// Every zone, in the order written; at least one in a config.
    public var zones: [Zone]
    /// The sirens, all switched together; none by default (the alarm still journals and publishes).
    public var sirens: [Siren]
    /// The codes that disarm (and arm, with `codeArmRequired`); a config needs at least one.
    public var codes: [Code]
    /// Per mode, the time to leave after arming; a mode without one arms at once.
    public var exitDelay: [ArmMode: Duration]
    /// Per mode, the time to disarm after a `delayed` zone opens; without one it triggers at once.
    public var entryDelay: [ArmMode: Duration]
    /// How long the sirens sound.
    public var sirenTimeout: Duration
    /// How often the `on` line is written again while triggered (a siren board that reset sounds again).
    public var sirenRepeat: Duration
    /// `after_timeout`: re-arm or disarm when the siren timeout ends; `.rearm` by default.
    public var afterTimeout: AfterTimeout
    /// `restore`: the state taken back after a restart; `.last` by default.
    public var restore: Restore
    /// Wrong codes in a row that lock every code out.
    public var lockoutAttempts: Int
    /// How long a lock-out lasts.
    public var lockoutDuration: Duration
    /// Whether arming needs a code too (disarming always does).
    public var codeArmRequired: Bool

    /// Settings with the config's defaults for whatever is not given.
    /// - Parameters:
    ///   - zones: the zones.
    ///   - sirens: the sirens; none by default.
    ///   - codes: the codes; none by default.
    ///   - exitDelay: per mode, the exit delay; none by default.
    ///   - entryDelay: per mode, the entry delay; none by default.
    ///   - sirenTimeout: how long the sirens sound; 180 s by default.
    ///   - sirenRepeat: how often `on` is written again; 5 s by default.
    ///   - afterTimeout: what follows the siren timeout; `.rearm` by default.
    ///   - restore: the state after a restart; `.last` by default.
    ///   - lockoutAttempts: wrong codes in a row before the lock-out; 5 by default.
    ///   - lockoutDuration: how long the lock-out lasts; 300 s by default.
    ///   - codeArmRequired: whether arming needs a code; false by default.
    public init(
        zones: [Zone], sirens: [Siren] = [], codes: [Code] = [], exitDelay: [ArmMode: Duration] = [:],
        entryDelay: [ArmMode: Duration] = [:], sirenTimeout: Duration = .seconds(180),
        sirenRepeat: Duration = .seconds(5), afterTimeout: AfterTimeout = .rearm, restore: Restore = .last,
        lockoutAttempts: Int = 5, lockoutDuration: Duration = .seconds(300), codeArmRequired: Bool = false
    ) {
        self.zones = zones
        self.sirens = sirens
        self.codes = codes
        self.exitDelay = exitDelay
        self.entryDelay = entryDelay
        self.sirenTimeout = sirenTimeout
        self.sirenRepeat = sirenRepeat
        self.afterTimeout = afterTimeout
        self.restore = restore
        self.lockoutAttempts = lockoutAttempts
        self.lockoutDuration = lockoutDuration
        self.codeArmRequired = codeArmRequired
    }
}
