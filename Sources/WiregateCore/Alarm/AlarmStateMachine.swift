/// The gateway's own alarm panel, without I/O: readings, board availability, commands with
/// checked codes and the clock go in; what to make durable, the sirens' lines, the events to
/// journal and the state to publish come out, in the order they must be done. It decides alone:
/// nothing in it waits on the broker, the backend or the journal, so the house is protected with
/// all three gone.
///
/// The rules, as classic panels have them. Arming starts the exit delay (`arming`), during which
/// only `always` zones trigger; arming is refused while an `instant` zone is open or a watched
/// zone's board is offline, with the zone named. Armed, an `instant` zone triggers at once, a `delayed` one starts the entry delay
/// (`pending`), a `follower` waits while an entry delay runs and else triggers, a bypassed or
/// left-out zone does nothing. A zone whose board is offline or silent counts as open while
/// armed (unless it says otherwise). Triggered, the sirens get their `on` line every
/// `sirenRepeat` until `sirenTimeout`, then `off`, and the alarm disarms or re-arms with the
/// zones still open left out until they close. A disarm always needs a code; wrong codes in a
/// row lock every code out for a while, the right one too.
///
/// Durability: every change of state or of the lock-out comes out first as `persist`, so that
/// the driver commits it before it sounds a siren or tells anyone; `init(restoring:)` takes
/// that snapshot back after a restart.
public struct AlarmStateMachine: Sendable {
    /// A point in monotonic time, for the delays and the lock-out: a wall-clock step cannot move them.
    public typealias Instant = ContinuousClock.Instant

    /// Who gave a command: in the events and the logs.
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        /// A keypad or key-switch board.
        case keypad(board: String)
        /// `wiregate alarm` on the gateway, as this user.
        case cli(user: String)
        /// `<base>/<gateway>/alarm/set`.
        case mqtt

        /// `keypad <board>`, `cli <user>` or `mqtt`, as the events and logs name the source.
        public var description: String {
            switch self {
            case .keypad(let board): "keypad \(board)"
            case .cli(let user): "cli \(user)"
            case .mqtt: "mqtt"
            }
        }
    }

    /// A code as the driver checked it against the configured hashes.
    public enum Code: Sendable, Equatable {
        /// No code came with the command.
        case none
        /// It matched the code of this name.
        case valid(name: String)
        /// It matched none.
        case wrong
    }

    /// What a keypad, the CLI or `alarm/set` asks of the panel.
    public enum Command: Sendable, Equatable {
        case arm(ArmMode)
        case disarm
    }

    /// What happened, fed by the driver with the time it happened.
    public enum Input: Sendable, Equatable {
        /// A board's decoded value (`key` is the event's subtopic).
        case reading(board: String, key: String, value: String)
        /// A board came online, or went offline or silent.
        case availability(board: String, online: Bool)
        case command(Command, code: Code, source: Source)
        /// The clock moved: deadlines up to now are acted on.
        case tick
    }

    /// What the alarm journals (as a critical event) and logs.
    public enum Record: Sendable, Equatable {
        case changed(from: AlarmState, to: AlarmState, by: String?)
        case triggered(zone: String)
        case wrongCode(source: String)
        case lockedOut(attempts: Int, for: Duration)
        case refused(command: String, source: String, reason: String)
    }

    /// What the driver must do, in the order given.
    public enum Action: Sendable, Equatable {
        /// Commit this before doing what follows.
        case persist(Snapshot)
        /// Write every siren's `on` (or `off`) line.
        case sirens(on: Bool)
        case journal(Record)
        /// Publish the state (retained).
        case publish(AlarmState)
    }

    /// What survives a restart, with the timers as what was left of them.
    public struct Snapshot: Sendable, Equatable, Codable {
        /// The alarm's state.
        public var state: AlarmState
        /// The mode armed (or being armed); nil when the alarm was not armed.
        public var mode: ArmMode?
        /// The zone that triggered, or started the entry delay.
        public var cause: String?
        /// Zones left out by a re-arm until they close.
        public var leftOut: [String]
        /// Wrong codes in a row so far, short of a lock-out.
        public var wrongCodes: Int
        /// Time left of the state's own timer (exit, entry or siren), in milliseconds.
        public var timerLeftMilliseconds: Int64?
        /// Time left of the lock-out, in milliseconds.
        public var lockoutLeftMilliseconds: Int64?

        /// A snapshot as it was taken (or read back from the alarm's file).
        public init(
            state: AlarmState, mode: ArmMode?, cause: String?, leftOut: [String], wrongCodes: Int,
            timerLeftMilliseconds: Int64?, lockoutLeftMilliseconds: Int64?
        ) {
            self.state = state
            self.mode = mode
            self.cause = cause
            self.leftOut = leftOut
            self.wrongCodes = wrongCodes
            self.timerLeftMilliseconds = timerLeftMilliseconds
            self.lockoutLeftMilliseconds = lockoutLeftMilliseconds
        }
    }

    /// The zones, sirens, codes and timings, from the config's `alarm:`.
    public let settings: AlarmSettings
    /// The alarm's state; disarmed until a command or a restored snapshot says otherwise.
    public private(set) var state: AlarmState = .disarmed
    /// The mode armed (or being armed); nil when disarmed, or triggered by an `always` zone while disarmed.
    public private(set) var mode: ArmMode?
    /// The zone that triggered the alarm or started the entry delay; nil otherwise.
    public private(set) var cause: String?
    /// When the state's own timer ends: the exit delay, the entry delay or the siren time.
    public private(set) var stateDeadline: Instant?
    /// When the sirens get their `on` line again.
    private var nextSirenRepeat: Instant?
    /// Wrong codes in a row since the last right one; back to zero when they lock codes out.
    public private(set) var wrongCodes = 0
    /// When the lock-out ends; nil when codes are not locked out (or its end has been acted on).
    public private(set) var lockedUntil: Instant?
    private var leftOut: Set<String> = []
    /// Per zone, whether its last reading was open.
    private var readOpen: Set<String> = []
    private var offlineBoards: Set<String> = []
    /// The zones journaled as triggering during this alarm (the cause first); cleared when it ends.
    private var toldWhileTriggered: Set<String> = []

    /// A disarmed alarm.
    public init(settings: AlarmSettings) {
        self.settings = settings
    }

    /// The alarm as it was when `snapshot` was taken, `elapsed` ago (as far as the wall clock can
    /// tell; 0 when it cannot), or disarmed when the settings say `restore: disarmed`. A lock-out
    /// is restored either way: a restart must not be a way round it.
    public init(settings: AlarmSettings, restoring snapshot: Snapshot, elapsed: Duration, now: Instant) {
        self.settings = settings
        func left(_ milliseconds: Int64?) -> Instant? {
            guard let milliseconds else { return nil }
            return now + max(.zero, .milliseconds(milliseconds) - max(.zero, elapsed))
        }
        wrongCodes = snapshot.wrongCodes
        lockedUntil = left(snapshot.lockoutLeftMilliseconds)
        guard settings.restore == .last, snapshot.state != .disarmed else { return }
        state = snapshot.state
        mode = snapshot.mode
        cause = snapshot.cause
        leftOut = Set(snapshot.leftOut)
        stateDeadline = left(snapshot.timerLeftMilliseconds)
        // `started(now:)` sounds it at once; the repeats go on from there.
        if state == .triggered { nextSirenRepeat = now + settings.sirenRepeat }
    }

    /// What the driver does once, at start: publish the state, and sound a restored trigger
    /// again while its siren time is not over (one that ran out while the gateway was away ends
    /// at the first tick, without a chirp).
    public func started(now: Instant) -> [Action] {
        let sounding = state == .triggered && (stateDeadline.map { $0 > now } ?? false)
        return sounding ? [.sirens(on: true), .publish(state)] : [.publish(state)]
    }

    /// The earliest time something is due; the driver feeds `tick` then (or sooner).
    public var nextDeadline: Instant? {
        [stateDeadline, nextSirenRepeat, lockedUntil].compactMap { $0 }.min()
    }

    /// Whether codes are refused now.
    public func isLockedOut(now: Instant) -> Bool {
        lockedUntil.map { now < $0 } ?? false
    }

    /// Whether `zone` counts as open now.
    public func isOpen(_ zone: AlarmSettings.Zone) -> Bool {
        if readOpen.contains(zone.name) { return true }
        return zone.opensWhenUnavailable && isArmedOrAlarming && offlineBoards.contains(zone.board)
    }

    /// Takes `input` at `now`; returns the actions to perform, in order.
    public mutating func handle(_ input: Input, now: Instant) -> [Action] {
        var actions: [Action] = []
        let before = durableFacts
        switch input {
        case .reading(let board, let key, let value):
            for zone in settings.zones where zone.board == board && zone.key == key {
                let wasOpen = isOpen(zone)
                if zone.openWhen.isOpen(value) { readOpen.insert(zone.name) } else { readOpen.remove(zone.name) }
                zoneChanged(zone, wasOpen: wasOpen, now: now, into: &actions)
            }
        case .availability(let board, let online):
            let zones = settings.zones.filter { $0.board == board }
            let wasOpen = zones.map(isOpen)
            if online { offlineBoards.remove(board) } else { offlineBoards.insert(board) }
            for (zone, wasOpen) in zip(zones, wasOpen) { zoneChanged(zone, wasOpen: wasOpen, now: now, into: &actions) }
        case .command(let command, let code, let source):
            handle(command, code: code, source: source, now: now, into: &actions)
        case .tick:
            timersDue(now: now, into: &actions)
        }
        // Timers that ended while the input was on its way are acted on with it.
        if input != .tick { timersDue(now: now, into: &actions) }
        if durableFacts != before || actions.contains(where: \.isStateChange) {
            actions.insert(.persist(snapshot(now: now)), at: 0)
        }
        return actions
    }

    /// What a restart must find as it was (the timers are saved with each of these changes).
    private struct DurableFacts: Equatable {
        var state: AlarmState
        var mode: ArmMode?
        var cause: String?
        var leftOut: Set<String>
        var wrongCodes: Int
        var lockedOut: Bool
    }

    private var durableFacts: DurableFacts {
        DurableFacts(
            state: state, mode: mode, cause: cause, leftOut: leftOut, wrongCodes: wrongCodes,
            lockedOut: lockedUntil != nil)
    }

    /// The alarm as it should survive a restart now.
    public func snapshot(now: Instant) -> Snapshot {
        func left(_ deadline: Instant?) -> Int64? {
            deadline.map { max(.zero, $0 - now) }.map {
                $0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000
            }
        }
        return Snapshot(
            state: state, mode: mode, cause: cause, leftOut: leftOut.sorted(), wrongCodes: wrongCodes,
            timerLeftMilliseconds: left(stateDeadline), lockoutLeftMilliseconds: left(lockedUntil))
    }

    // MARK: - Zones

    private var isArmedOrAlarming: Bool {
        state != .disarmed && state != .arming
    }

    private func isWatched(_ zone: AlarmSettings.Zone) -> Bool {
        if leftOut.contains(zone.name) { return false }
        if zone.kind == .always { return true }
        guard let mode, isArmedOrAlarming else { return false }
        return !zone.bypassedIn.contains(mode)
    }

    private mutating func zoneChanged(
        _ zone: AlarmSettings.Zone, wasOpen: Bool, now: Instant, into actions: inout [Action]
    ) {
        let open = isOpen(zone)
        // A zone left out by a re-arm protects again once it has closed.
        if !open { leftOut.remove(zone.name) }
        guard open, !wasOpen, isWatched(zone) else { return }
        zoneOpened(zone, now: now, into: &actions)
    }

    private mutating func zoneOpened(_ zone: AlarmSettings.Zone, now: Instant, into actions: inout [Action]) {
        switch (zone.kind, state) {
        case (_, .triggered):
            // Already sounding; but every other zone that opens is told, once per alarm (smoke
            // during an intrusion), never once per chatter of a contact.
            if toldWhileTriggered.insert(zone.name).inserted {
                actions.append(.journal(.triggered(zone: zone.name)))
            }
        case (.always, _), (.instant, _), (.follower, .armedHome), (.follower, .armedAway),
            (.follower, .armedNight), (.follower, .armedVacation):
            trigger(zone.name, now: now, into: &actions)
        case (.follower, _):
            // The entry delay runs: this is the way in.
            return
        case (.delayed, .pending):
            return
        case (.delayed, _):
            let delay = mode.flatMap { settings.entryDelay[$0] } ?? .zero
            guard delay > .zero else { return trigger(zone.name, now: now, into: &actions) }
            change(to: .pending, by: nil, into: &actions)
            cause = zone.name
            stateDeadline = now + delay
        }
    }

    private mutating func trigger(_ zone: String, now: Instant, into actions: inout [Action]) {
        // The sirens first, right after the persist: the journal and the status can wait.
        actions.append(.sirens(on: true))
        change(to: .triggered, by: nil, into: &actions)
        cause = zone
        toldWhileTriggered = [zone]
        actions.append(.journal(.triggered(zone: zone)))
        stateDeadline = now + settings.sirenTimeout
        nextSirenRepeat = now + settings.sirenRepeat
    }

    /// Armed from now: every watched zone already open counts as opening now, a follower as the
    /// way out (the hall's motion detector seeing the last one leave): it starts the entry delay.
    private mutating func zonesOpenAtArming(now: Instant, into actions: inout [Action]) {
        for var zone in settings.zones where isOpen(zone) && isWatched(zone) {
            if zone.kind == .follower { zone.kind = .delayed }
            zoneOpened(zone, now: now, into: &actions)
            if state == .triggered { return }
        }
    }

    // MARK: - Commands

    private mutating func handle(
        _ command: Command, code: Code, source: Source, now: Instant, into actions: inout [Action]
    ) {
        let name: String
        switch command {
        case .arm(let mode): name = "arm \(mode.rawValue)"
        case .disarm: name = "disarm"
        }
        func refuse(_ reason: String) {
            actions.append(.journal(.refused(command: name, source: source.description, reason: reason)))
        }
        let needsCode = command == .disarm || settings.codeArmRequired
        var user: String?
        if needsCode {
            if isLockedOut(now: now) {
                return refuse("codes are locked out after \(settings.lockoutAttempts) wrong ones")
            }
            switch code {
            case .none:
                return refuse("a code is needed")
            case .wrong:
                wrongCodes += 1
                actions.append(.journal(.wrongCode(source: source.description)))
                if wrongCodes >= settings.lockoutAttempts {
                    lockedUntil = now + settings.lockoutDuration
                    actions.append(.journal(.lockedOut(attempts: wrongCodes, for: settings.lockoutDuration)))
                    wrongCodes = 0
                }
                return
            case .valid(let name):
                wrongCodes = 0
                user = name
            }
        } else if case .valid(let name) = code {
            user = name
        }
        let by = user.map { "\($0) (\(source))" } ?? source.description
        switch command {
        case .disarm:
            guard state != .disarmed else { return refuse("already disarmed") }
            let wasSounding = state == .triggered
            change(to: .disarmed, by: by, into: &actions)
            if wasSounding { actions.append(.sirens(on: false)) }
            mode = nil
            cause = nil
            stateDeadline = nil
            nextSirenRepeat = nil
            leftOut = []
        case .arm(let newMode):
            guard state == .disarmed else { return refuse("already \(state.rawValue): disarm first") }
            // A panel does not arm over a window left open, or a cable already cut.
            let watched = settings.zones.filter { $0.kind != .always && !$0.bypassedIn.contains(newMode) }
            if let open = watched.first(where: { $0.kind == .instant && readOpen.contains($0.name) }) {
                return refuse("zone \(open.name) is open")
            }
            if let cut = watched.first(where: { $0.opensWhenUnavailable && offlineBoards.contains($0.board) }) {
                return refuse("zone \(cut.name): board \(cut.board) is offline")
            }
            mode = newMode
            let delay = settings.exitDelay[newMode] ?? .zero
            if delay > .zero {
                change(to: .arming, by: by, into: &actions)
                stateDeadline = now + delay
            } else {
                change(to: newMode.armedState, by: by, into: &actions)
                zonesOpenAtArming(now: now, into: &actions)
            }
        }
    }

    // MARK: - Timers

    private mutating func timersDue(now: Instant, into actions: inout [Action]) {
        if let until = lockedUntil, now >= until { lockedUntil = nil }
        if let repeatAt = nextSirenRepeat, now >= repeatAt, state == .triggered {
            actions.append(.sirens(on: true))
            nextSirenRepeat = now + settings.sirenRepeat
        }
        guard let deadline = stateDeadline, now >= deadline else { return }
        stateDeadline = nil
        switch state {
        case .arming:
            guard let mode else { return }
            change(to: mode.armedState, by: nil, into: &actions)
            zonesOpenAtArming(now: now, into: &actions)
        case .pending:
            trigger(cause ?? "entry delay", now: now, into: &actions)
        case .triggered:
            nextSirenRepeat = nil
            actions.append(.sirens(on: false))
            // Open zones would trigger again at once: left out until they close.
            leftOut = Set(settings.zones.filter(isOpen).map(\.name))
            if let mode, settings.afterTimeout == .rearm {
                change(to: mode.armedState, by: nil, into: &actions)
            } else {
                change(to: .disarmed, by: nil, into: &actions)
                mode = nil
                // Disarmed, only an `always` zone still open matters, and it stays left out.
                leftOut = leftOut.filter { name in settings.zones.contains { $0.name == name && $0.kind == .always } }
            }
            cause = nil
        default:
            return
        }
    }

    private mutating func change(to new: AlarmState, by: String?, into actions: inout [Action]) {
        guard new != state else { return }
        if state == .triggered { toldWhileTriggered = [] }
        actions.append(.journal(.changed(from: state, to: new, by: by)))
        actions.append(.publish(new))
        state = new
    }
}

extension AlarmStateMachine.Action {
    fileprivate var isStateChange: Bool {
        if case .publish = self { return true }
        return false
    }
}
