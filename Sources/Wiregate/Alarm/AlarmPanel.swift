import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import WiregateCore

/// The alarm as the rest of the gateway sees it: followed by the status publisher (status.json,
/// the retained `alarm/state`) and the CLI.
public struct AlarmStatus: Sendable, Equatable, Codable {
    /// The state, as Home Assistant names it.
    public var state: AlarmState
    /// The mode armed or being armed; nil when disarmed.
    public var mode: ArmMode?
    /// The zone that triggered the alarm or started the entry delay.
    public var cause: String?
    /// Whether codes are refused after too many wrong ones.
    public var lockedOut: Bool
    /// Why the last change could not be saved to `alarm.json` (a restart now would not restore
    /// it); nil while saving works.
    public var notSaved: String?

    /// A status as the panel reports it.
    public init(
        state: AlarmState, mode: ArmMode? = nil, cause: String? = nil, lockedOut: Bool = false, notSaved: String? = nil
    ) {
        self.state = state
        self.mode = mode
        self.cause = cause
        self.lockedOut = lockedOut
        self.notSaved = notSaved
    }

    /// The status of `machine` now.
    init(_ machine: AlarmStateMachine, notSaved: String?) {
        self.init(
            state: machine.state, mode: machine.mode, cause: machine.cause, lockedOut: machine.isLockedOut(now: .now),
            notSaved: notSaved)
    }
}

/// The gateway's own alarm panel: drives `AlarmStateMachine` from the boards' readings and
/// availability, the keypads, the CLI and `alarm/set`, and performs its actions.
///
/// Independence is the point: the decisions are made on one task of their own from inputs that
/// never wait (the boards' readers hand readings over without blocking); the state is made
/// durable (`alarm.json`) before a siren hears of it; each siren is written by a task of its
/// own (a stalled siren board holds up neither the other sirens nor the decisions); the events
/// go to the journal from another (an SD card busy with telemetry never delays a siren). Nothing
/// here reads the broker's or the backend's state.
public final class AlarmPanel: Service, Sendable {
    /// What the decision task takes, in order.
    enum Input: Sendable {
        case machine(AlarmStateMachine.Input)
        /// The watchdog's question: is the decision loop turning? Answered when it is taken.
        case ping(@Sendable () -> Void)
        /// A command whose code was checked, with where its answer goes.
        case command(
            AlarmStateMachine.Command, code: AlarmStateMachine.Code, source: AlarmStateMachine.Source,
            reply: (@Sendable (CommandOutcome) -> Void)?)
    }

    /// What became of a command, for the CLI and the logs.
    public enum CommandOutcome: Sendable, Equatable {
        case done(AlarmState)
        case refused(String)
    }

    /// The board name the alarm's own events carry (`<base>/<gateway>/alarm/event`); no board may be named so.
    public static let eventBoard = "alarm"

    private let config: GatewayConfig
    private let alarm: GatewayConfig.Alarm
    private let directory: BoardDirectory
    private let outbox: any EventOutbox
    private let store: AlarmStore
    private let checker: CodeChecker
    private let logger: Logger
    private let metrics: AlarmMetrics
    private let inputs: (stream: AsyncStream<Input>, continuation: AsyncStream<Input>.Continuation)
    private let current: Mutex<(status: AlarmStatus, followers: Followers<AlarmStatus>)>
    /// The machine as `alarm.json` left it, read at `init`.
    private let restoredMachine: AlarmStateMachine
    /// Per board, the keys the alarm reads (zones) and the keypad it is, for the readers' tap.
    private let watched: [String: Set<String>]
    private let keypads: [String: GatewayConfig.Alarm.Keypad]
    /// Set when the stop begins: readings and availability are ignored from then on.
    private let stopping = Mutex(false)
    /// Why the last save of `alarm.json` failed; nil while saving works.
    private let saveProblem = Mutex<String?>(nil)
    /// The boards seen online since the start (or counted offline after `startGrace`).
    private let seenOnline = Mutex(Set<String>())

    /// - Parameters:
    ///   - config: a validated config whose `alarm` section is set.
    ///   - directory: the boards, for their availability and to write to the sirens.
    ///   - outbox: where the alarm's events are journaled, as critical events.
    ///   - stateDirectory: where `alarm.json` is kept (beside the journal).
    ///   - metrics: where the triggers are counted, per zone.
    public init(
        config: GatewayConfig, alarm: GatewayConfig.Alarm, directory: BoardDirectory, outbox: any EventOutbox,
        stateDirectory: String, metrics: AlarmMetrics = GatewayMetrics.none.alarm, logger: Logger
    ) {
        self.metrics = metrics
        self.config = config
        self.alarm = alarm
        self.directory = directory
        self.outbox = outbox
        self.logger = logger
        store = AlarmStore(directory: stateDirectory)
        checker = CodeChecker(codes: alarm.settings.codes)
        inputs = AsyncStream.makeStream(of: Input.self)
        // Restored here, not at `run()`: nothing may see (or announce) `disarmed` in between.
        let machine = Self.restored(alarm.settings, from: store, logger: logger)
        restoredMachine = machine
        current = Mutex((status: AlarmStatus(machine, notSaved: nil), followers: Followers<AlarmStatus>()))
        watched = Dictionary(grouping: alarm.settings.zones, by: \.board).mapValues { Set($0.map(\.key)) }
        keypads = Dictionary(alarm.keypads.map { ($0.board, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// The alarm now.
    public var status: AlarmStatus { current.withLock { $0.status } }

    /// The alarm's status now, then every change, for one consumer; ends when the panel has stopped.
    public func changes() -> AsyncStream<AlarmStatus> {
        current.withLock { current in
            current.followers.add(startingWith: [current.status]) { [weak self] id in
                self?.current.withLock { $0.followers.remove(id) }
            }
        }
    }

    /// The boards' readers call this with each line's events before they journal them, on their
    /// own task; it never waits. A zone's reading goes to the alarm; a keypad's events are taken
    /// out (its code is never journaled, logged or published) and become a command.
    /// - Parameter events: one line's events (or a read's), in order.
    /// - Returns: the events to journal.
    public func tap(_ events: [Event]) -> [Event] {
        guard let first = events.first else { return events }
        let keypad = keypads[first.board]
        if keypad == nil, watched[first.board] == nil { return events }
        var kept: [Event] = []
        var action: String?
        var code: String?
        for event in events {
            if let keypad, event.board == keypad.board, event.subtopic == keypad.actionKey {
                action = event.payload
            } else if let keypad, event.board == keypad.board, event.subtopic == keypad.codeKey {
                code = event.payload
            } else {
                if watched[event.board]?.contains(event.subtopic) == true {
                    inputs.continuation.yield(
                        .machine(.reading(board: event.board, key: event.subtopic, value: event.payload)))
                }
                kept.append(event)
            }
        }
        if let keypad, let action {
            let source = AlarmStateMachine.Source.keypad(board: keypad.board)
            guard let command = Self.command(action) else {
                logger.warning(
                    "keypad action not understood",
                    metadata: ["board": "\(keypad.board)", "action": "\(action.prefix(20))"])
                return kept
            }
            Task { await self.submit(command, code: code, source: source) }
        }
        return kept
    }

    /// Home Assistant's `alarm_control_panel` payloads, in any case.
    static func command(_ action: String) -> AlarmStateMachine.Command? {
        switch action.uppercased() {
        case "ARM_AWAY": .arm(.away)
        case "ARM_HOME": .arm(.home)
        case "ARM_NIGHT": .arm(.night)
        case "ARM_VACATION": .arm(.vacation)
        case "DISARM": .disarm
        default: nil
        }
    }

    /// Checks `code` (off the decision task: yescrypt is slow on purpose), then hands the command over.
    /// - Returns: what became of it.
    @discardableResult
    public func submit(_ command: AlarmStateMachine.Command, code: String?, source: AlarmStateMachine.Source) async
        -> CommandOutcome
    {
        let checked = await checker.check(code)
        return await withCheckedContinuation { continuation in
            let input = Input.command(command, code: checked, source: source) { continuation.resume(returning: $0) }
            if case .terminated = inputs.continuation.yield(input) {
                continuation.resume(returning: .refused("the alarm has stopped"))
            }
        }
    }

    /// Returns once the decision loop has taken a question put behind everything queued now:
    /// the systemd watchdog's liveness check (a loop stuck on a card that hangs stops the
    /// pings, and systemd restarts the daemon). Returns at once when the panel has stopped.
    public func heartbeat() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            if case .terminated = inputs.continuation.yield(.ping { continuation.resume() }) {
                continuation.resume()
            }
        }
    }

    /// Decides until graceful shutdown.
    public func run() async {
        var machine = restoredMachine
        let sirens = alarm.settings.sirens.map { siren in
            (siren, AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(4)))
        }
        let journal = AsyncStream.makeStream(of: Event.self)
        await withTaskGroup(of: Void.self) { group in
            for (siren, queue) in sirens {
                group.addTask { await self.writeSiren(siren.board, lines: queue.stream) }
            }
            group.addTask {
                for await event in journal.stream { await self.outbox.append([event]) }
            }
            group.addTask { await self.followAvailability() }
            group.addTask {
                try? await gracefulShutdown()
                // From here, boards closing are the stop, not cut cables (see the loop).
                self.stopping.withLock { $0 = true }
                self.inputs.continuation.finish()
            }
            let perform = { (actions: [AlarmStateMachine.Action], machine: AlarmStateMachine) in
                for action in actions {
                    switch action {
                    case .persist(let snapshot):
                        do {
                            try self.store.save(snapshot)
                            self.saveProblem.withLock { $0 = nil }
                        } catch {
                            // The siren still sounds: a card that fails must not silence the alarm.
                            // Said loudly, and in the status until a save works again.
                            self.logger.critical(
                                "cannot save the alarm's state: a restart now would not restore it",
                                metadata: ["error": "\(error)", "path": "\(self.store.path)"])
                            self.saveProblem.withLock { $0 = "\(error)" }
                        }
                    case .sirens(let on):
                        for (siren, queue) in sirens { queue.continuation.yield(on ? siren.on : siren.off) }
                    case .journal(let record):
                        self.log(record)
                        // A refusal is logged, not journaled: anyone on the broker can send a
                        // command without a code, and a flood of them must not fill the journal
                        // with critical events that push out real ones.
                        if case .refused = record { continue }
                        journal.continuation.yield(self.event(record, machine: machine))
                    case .publish:
                        self.publish(machine)
                    }
                }
            }
            perform(machine.started(now: .now), machine)
            // A restored timer (a siren time, an entry delay, a lock-out) is set by the first round.
            inputs.continuation.yield(.machine(.tick))
            let timer = Mutex<Task<Void, Never>?>(nil)
            var armedFor: ContinuousClock.Instant?
            for await input in inputs.stream {
                let actions: [AlarmStateMachine.Action]
                var answer: (reply: @Sendable (CommandOutcome) -> Void, outcome: CommandOutcome)?
                switch input {
                case .ping(let answer):
                    answer()
                    continue
                case .machine(let input):
                    // Once the stop has begun (or the group is cancelled because a service ended),
                    // what the boards report is their closing: never a reason to trigger.
                    if stopping.withLock({ $0 }) || Task.isCancelled, input != .tick { continue }
                    actions = machine.handle(input, now: .now)
                case .command(let command, let code, let source, let reply):
                    actions = machine.handle(.command(command, code: code, source: source), now: .now)
                    let refusal = actions.lazy.compactMap { action -> String? in
                        switch action {
                        case .journal(.refused(_, _, let reason)): reason
                        case .journal(.wrongCode): "wrong code"
                        default: nil
                        }
                    }.first
                    let outcome = refusal.map(CommandOutcome.refused) ?? .done(machine.state)
                    if let reply { answer = (reply, outcome) }
                }
                perform(actions, machine)
                // A siren board that comes (back) online is told what it should be doing: one
                // that reset while triggered sounds again, one left on by a crash goes quiet.
                if case .machine(.availability(let board, online: true)) = input {
                    for (siren, queue) in sirens where siren.board == board {
                        queue.continuation.yield(machine.state == .triggered ? siren.on : siren.off)
                    }
                }
                // A lock-out beginning or ending changes the status without a change of state.
                publish(machine)
                // Answered once the change is durable and the status says it.
                if let answer { answer.reply(answer.outcome) }
                // One timer, for the earliest deadline, set again when that changes.
                if machine.nextDeadline != armedFor {
                    armedFor = machine.nextDeadline
                    let continuation = inputs.continuation
                    let next = armedFor.map { deadline in
                        Task {
                            try? await Task.sleep(until: deadline, clock: .continuous)
                            if !Task.isCancelled { continuation.yield(.machine(.tick)) }
                        }
                    }
                    timer.withLock {
                        $0?.cancel(); $0 = next
                    }
                }
            }
            timer.withLock { $0?.cancel() }
            for (_, queue) in sirens { queue.continuation.finish() }
            journal.continuation.finish()
            group.cancelAll()
        }
        let followers = current.withLock { $0.followers.removeAll() }
        followers.finish()
    }

    /// How long after the start a board that has not come online counts as offline: until then
    /// it may just not be open yet (a restart while armed must not trigger on its own boards).
    var startGrace: Duration {
        (config.boards.map(\.settle).max() ?? .zero) + .seconds(10)
    }

    /// Hands the boards' availability to the machine: a board going offline once it was online,
    /// and, after `startGrace`, every board that has not come online since the start.
    private func followAvailability() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                do { try await Task.sleep(for: self.startGrace) } catch { return }
                for status in self.directory.snapshot() where !status.online {
                    let late = self.seenOnline.withLock { $0.insert(status.board).inserted }
                    if late {
                        self.logger.warning("board not online since the start", metadata: ["board": "\(status.board)"])
                        self.inputs.continuation.yield(.machine(.availability(board: status.board, online: false)))
                    }
                }
            }
            for await change in directory.changes() {
                let known = seenOnline.withLock { seen in
                    defer { if change.online { seen.insert(change.board) } }
                    return seen.contains(change.board)
                }
                guard change.online || known else { continue }
                inputs.continuation.yield(.machine(.availability(board: change.board, online: change.online)))
            }
            group.cancelAll()
        }
    }

    /// The machine as `alarm.json` left it, or disarmed.
    private static func restored(_ settings: AlarmSettings, from store: AlarmStore, logger: Logger)
        -> AlarmStateMachine
    {
        switch store.load() {
        case .success(let saved?):
            let machine = AlarmStateMachine(
                settings: settings, restoring: saved.snapshot, elapsed: saved.elapsed, now: .now)
            logger.notice(
                "alarm restored",
                metadata: ["state": "\(machine.state.rawValue)", "saved": "\(saved.snapshot.state.rawValue)"])
            return machine
        case .success(nil):
            return AlarmStateMachine(settings: settings)
        case .failure(let error):
            logger.critical("alarm state unreadable: starting disarmed", metadata: ["error": "\(error)"])
            return AlarmStateMachine(settings: settings)
        }
    }

    private func publish(_ machine: AlarmStateMachine) {
        let status = AlarmStatus(machine, notSaved: saveProblem.withLock { $0 })
        current.withLock { current in
            guard current.status != status else { return }
            current.status = status
            current.followers.yield(status)
        }
    }

    /// Writes each line to the siren's board, through the board's own allow-list.
    private func writeSiren(_ board: String, lines: AsyncStream<String>) async {
        for await line in lines {
            guard let reader = directory[board], reader.board.commands.allows(line) else {
                logger.error(
                    "siren line not written: no such board, or not in its commands list",
                    metadata: ["board": "\(board)"])
                continue
            }
            // A siren board not open yet (the daemon just started: a restored alarm sounds again)
            // or reopening is written to once it is, for up to `sirenRetry`; lines keep their order.
            let deadline = ContinuousClock.now + Self.sirenRetry
            var logged = false
            while !(await reader.write(commandLine: line)) {
                if !logged {
                    logger.error(
                        "siren line not written: the board is offline or not reading; trying again",
                        metadata: ["board": "\(board)"])
                    logged = true
                }
                guard ContinuousClock.now < deadline, !Task.isCancelled else { break }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// How long a siren line is tried again while its board is not open.
    static let sirenRetry = Duration.seconds(30)

    private func log(_ record: AlarmStateMachine.Record) {
        switch record {
        case .changed(let from, let to, let by):
            logger.notice("alarm \(to.rawValue)", metadata: ["from": "\(from.rawValue)", "by": "\(by ?? "-")"])
        case .triggered(let zone):
            metrics.triggers.increment(zone)
            logger.critical("alarm triggered", metadata: ["zone": "\(zone)"])
        case .wrongCode(let source):
            logger.warning("alarm: wrong code", metadata: ["source": "\(source)"])
        case .lockedOut(let attempts, let duration):
            logger.critical("alarm: codes locked out", metadata: ["attempts": "\(attempts)", "for": "\(duration)"])
        case .refused(let command, let source, let reason):
            logger.warning("alarm: \(command) refused", metadata: ["source": "\(source)", "reason": "\(reason)"])
        }
    }

    /// A record as a critical event on `<base>/<gateway>/alarm/event`, its payload JSON.
    func event(_ record: AlarmStateMachine.Record, machine: AlarmStateMachine) -> Event {
        var fields: [String: String] = ["state": machine.state.rawValue]
        switch record {
        case .changed(let from, let to, let by):
            fields["event"] = "changed"
            fields["from"] = from.rawValue
            fields["to"] = to.rawValue
            if let by { fields["by"] = by }
        case .triggered(let zone):
            fields["event"] = "triggered"
            fields["zone"] = zone
        case .wrongCode(let source):
            fields["event"] = "wrong_code"
            fields["source"] = source
        case .lockedOut(let attempts, let duration):
            fields["event"] = "locked_out"
            fields["attempts"] = "\(attempts)"
            fields["seconds"] = "\(duration.components.seconds)"
        case .refused(let command, let source, let reason):
            fields["event"] = "refused"
            fields["command"] = command
            fields["source"] = source
            fields["reason"] = reason
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let payload = (try? encoder.encode(fields)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return Event(
            board: Self.eventBoard, topic: config.gatewayTopicPrefix + "alarm/event", subtopic: "event",
            payload: payload, eventClass: .critical, receivedAt: Date())
    }
}
