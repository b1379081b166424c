import Testing
import WiregateCore

/// A house: the front door (the way in, delayed), a window (instant), the hall's motion detector
/// (a follower, bypassed at home) and a smoke detector (always), on two boards.
@Suite struct AlarmStateMachineTests {
    typealias Alarm = AlarmStateMachine
    let t0 = ContinuousClock.now

    static let settings = AlarmSettings(
        zones: [
            .init(name: "front door", board: "door", key: "door", openWhen: .oneOf(["open"]), kind: .delayed),
            .init(name: "window", board: "door", key: "window", openWhen: .not("closed"), kind: .instant),
            .init(
                name: "hall", board: "hall", key: "motion", openWhen: .oneOf(["1"]), kind: .follower,
                bypassedIn: [.home]),
            .init(
                name: "smoke", board: "hall", key: "smoke", openWhen: .oneOf(["1"]), kind: .always,
                opensWhenUnavailable: false)
        ],
        sirens: [.init(board: "siren", on: "SIREN=ON", off: "SIREN=OFF")],
        codes: [.init(name: "anna", hash: "$y$…")],
        exitDelay: [.away: .seconds(30)], entryDelay: [.away: .seconds(20), .home: .seconds(10)],
        sirenTimeout: .seconds(180), sirenRepeat: .seconds(5), lockoutAttempts: 3, lockoutDuration: .seconds(60))

    func at(_ seconds: Double) -> ContinuousClock.Instant { t0 + .milliseconds(Int64(seconds * 1000)) }

    func armedAway(_ alarm: inout Alarm) {
        _ = alarm.handle(.command(.arm(.away), code: .none, source: .mqtt), now: at(0))
        _ = alarm.handle(.tick, now: at(30))
        #expect(alarm.state == .armedAway)
    }

    func records(_ actions: [Alarm.Action]) -> [Alarm.Record] {
        actions.compactMap { if case .journal(let record) = $0 { record } else { nil } }
    }

    @Test func armingAwayRunsTheExitDelayThenArms() {
        var alarm = Alarm(settings: Self.settings)
        let actions = alarm.handle(
            .command(.arm(.away), code: .valid(name: "anna"), source: .keypad(board: "keypad")), now: at(0))
        #expect(actions.first == .persist(alarm.snapshot(now: at(0))), "the state is durable before anyone hears of it")
        #expect(records(actions) == [.changed(from: .disarmed, to: .arming, by: "anna (keypad keypad)")])
        #expect(actions.contains(.publish(.arming)))
        #expect(alarm.nextDeadline == at(30))
        // A door opened on the way out, and a motion in the hall, during the exit delay: nothing.
        #expect(alarm.handle(.reading(board: "door", key: "door", value: "open"), now: at(5)).isEmpty)
        #expect(alarm.handle(.reading(board: "hall", key: "motion", value: "1"), now: at(6)).isEmpty)
        _ = alarm.handle(.reading(board: "door", key: "door", value: "closed"), now: at(10))
        _ = alarm.handle(.reading(board: "hall", key: "motion", value: "0"), now: at(11))
        #expect(alarm.handle(.tick, now: at(29.9)).isEmpty)
        let armed = alarm.handle(.tick, now: at(30))
        #expect(records(armed) == [.changed(from: .arming, to: .armedAway, by: nil)])
        #expect(alarm.state == .armedAway)
    }

    @Test func aModeWithoutExitDelayArmsAtOnce() {
        var alarm = Alarm(settings: Self.settings)
        let actions = alarm.handle(.command(.arm(.home), code: .none, source: .cli(user: "root")), now: at(0))
        #expect(alarm.state == .armedHome)
        #expect(records(actions) == [.changed(from: .disarmed, to: .armedHome, by: "cli root")])
    }

    @Test func theDoorStartsTheEntryDelayThenTheSirensSoundAndRepeatAndStopAtTheTimeout() {
        var alarm = Alarm(settings: Self.settings)
        armedAway(&alarm)
        let opened = alarm.handle(.reading(board: "door", key: "door", value: "open"), now: at(100))
        #expect(alarm.state == .pending)
        #expect(!opened.contains(.sirens(on: true)))
        #expect(alarm.nextDeadline == at(120))
        // The hall's motion while one walks to the keypad: a follower waits.
        #expect(records(alarm.handle(.reading(board: "hall", key: "motion", value: "1"), now: at(105))).isEmpty)
        let triggered = alarm.handle(.tick, now: at(120))
        #expect(triggered.first.map { if case .persist = $0 { true } else { false } } == true)
        #expect(
            records(triggered) == [.changed(from: .pending, to: .triggered, by: nil), .triggered(zone: "front door")])
        // Persisted, then the sirens, before anything is journaled or published.
        #expect(triggered.dropFirst().first == .sirens(on: true))
        #expect(alarm.cause == "front door")
        // Again every 5 s (a siren board that reset sounds again), with nothing to persist.
        #expect(alarm.handle(.tick, now: at(125)) == [.sirens(on: true)])
        #expect(alarm.handle(.tick, now: at(127)).isEmpty)
        // At the timeout: off, and armed again with the door, still open, left out.
        let timedOut = alarm.handle(.tick, now: at(300))
        #expect(timedOut.contains(.sirens(on: false)))
        #expect(alarm.state == .armedAway)
        #expect(alarm.snapshot(now: at(300)).leftOut == ["front door", "hall"])
        #expect(alarm.handle(.reading(board: "door", key: "door", value: "open"), now: at(301)).isEmpty)
        // Once it has closed it protects again, and a restart must know it: persisted.
        let closed = alarm.handle(.reading(board: "door", key: "door", value: "closed"), now: at(302))
        #expect(closed.first.map { if case .persist = $0 { true } else { false } } == true)
        #expect(alarm.snapshot(now: at(302)).leftOut == ["hall"])
        _ = alarm.handle(.reading(board: "door", key: "door", value: "open"), now: at(303))
        #expect(alarm.state == .pending)
    }

    @Test func aDisarmWithinTheEntryDelaySoundsNothing() {
        var alarm = Alarm(settings: Self.settings)
        armedAway(&alarm)
        _ = alarm.handle(.reading(board: "door", key: "door", value: "open"), now: at(100))
        let disarmed = alarm.handle(
            .command(.disarm, code: .valid(name: "anna"), source: .keypad(board: "kp")), now: at(110))
        #expect(alarm.state == .disarmed)
        #expect(records(disarmed) == [.changed(from: .pending, to: .disarmed, by: "anna (keypad kp)")])
        #expect(!disarmed.contains(.sirens(on: true)) && !disarmed.contains(.sirens(on: false)))
        #expect(alarm.handle(.tick, now: at(200)).isEmpty)
        #expect(alarm.nextDeadline == nil)
    }

    @Test func theTimeoutDisarmsWhenTheSettingsSaySo() {
        var settings = Self.settings
        settings.afterTimeout = .disarm
        var alarm = Alarm(settings: settings)
        armedAway(&alarm)
        _ = alarm.handle(.reading(board: "door", key: "window", value: "ajar"), now: at(40))
        #expect(alarm.state == .triggered)
        let timedOut = alarm.handle(.tick, now: at(220))
        #expect(timedOut.contains(.sirens(on: false)))
        #expect(alarm.state == .disarmed && alarm.mode == nil)
    }

    @Test func anInstantZoneTriggersAtOnce() {
        var alarm = Alarm(settings: Self.settings)
        armedAway(&alarm)
        let actions = alarm.handle(.reading(board: "door", key: "window", value: "ajar"), now: at(40))
        #expect(alarm.state == .triggered)
        #expect(records(actions).contains(.triggered(zone: "window")))
        // Persist, then the sirens, then the rest: the order the driver performs them in.
        let persist = actions.firstIndex { if case .persist = $0 { true } else { false } }
        #expect(persist == 0 && actions.firstIndex(of: .sirens(on: true))! > 0)
    }

    @Test func everyZoneThatOpensWhileTriggeredIsJournaled() {
        var alarm = Alarm(settings: Self.settings)
        armedAway(&alarm)
        _ = alarm.handle(.reading(board: "door", key: "window", value: "ajar"), now: at(40))
        let smoke = alarm.handle(.reading(board: "hall", key: "smoke", value: "1"), now: at(41))
        #expect(records(smoke) == [.triggered(zone: "smoke")])
        // A chattering detector is told once per alarm.
        _ = alarm.handle(.reading(board: "hall", key: "smoke", value: "0"), now: at(42))
        #expect(alarm.handle(.reading(board: "hall", key: "smoke", value: "1"), now: at(43)).isEmpty)
        #expect(alarm.cause == "window", "the first zone stays the cause")
    }

    @Test func aFollowerTriggersWhenNoEntryDelayRuns() {
        var alarm = Alarm(settings: Self.settings)
        armedAway(&alarm)
        _ = alarm.handle(.reading(board: "hall", key: "motion", value: "1"), now: at(40))
        #expect(alarm.state == .triggered && alarm.cause == "hall")
    }

    @Test func aBypassedMotionZoneDoesNothingAtHome() {
        var alarm = Alarm(settings: Self.settings)
        _ = alarm.handle(.command(.arm(.home), code: .none, source: .mqtt), now: at(0))
        #expect(alarm.handle(.reading(board: "hall", key: "motion", value: "1"), now: at(1)).isEmpty)
        #expect(alarm.state == .armedHome)
        // The door at home has its own entry delay.
        _ = alarm.handle(.reading(board: "door", key: "door", value: "open"), now: at(2))
        #expect(alarm.state == .pending && alarm.nextDeadline == at(12))
    }

    @Test func smokeSoundsWhileDisarmedAndIsLeftOutAfterTheTimeout() {
        var alarm = Alarm(settings: Self.settings)
        let actions = alarm.handle(.reading(board: "hall", key: "smoke", value: "1"), now: at(0))
        #expect(alarm.state == .triggered && alarm.mode == nil)
        #expect(actions.contains(.sirens(on: true)))
        _ = alarm.handle(.tick, now: at(180))
        #expect(alarm.state == .disarmed)
        #expect(alarm.snapshot(now: at(180)).leftOut == ["smoke"])
        // Still smoking, reported again: left out, no new alarm until it has cleared.
        #expect(alarm.handle(.reading(board: "hall", key: "smoke", value: "1"), now: at(181)).isEmpty)
        _ = alarm.handle(.reading(board: "hall", key: "smoke", value: "0"), now: at(182))
        _ = alarm.handle(.reading(board: "hall", key: "smoke", value: "1"), now: at(183))
        #expect(alarm.state == .triggered)
    }

    @Test func aBoardGoingOfflineWhileArmedOpensItsZones() {
        var alarm = Alarm(settings: Self.settings)
        armedAway(&alarm)
        let cut = alarm.handle(.availability(board: "door", online: false), now: at(40))
        #expect(alarm.state == .triggered)
        // The delayed door and the instant window are both on it: the instant one wins.
        #expect(records(cut).contains(.triggered(zone: "window")))
    }

    @Test func aZoneThatSaysSoIsNotOpenedByItsBoardGoingOffline() {
        var alarm = Alarm(settings: Self.settings)
        _ = alarm.handle(.command(.arm(.home), code: .none, source: .mqtt), now: at(0))
        // The hall board carries the bypassed motion zone and the smoke zone that opts out.
        #expect(alarm.handle(.availability(board: "hall", online: false), now: at(1)).isEmpty)
        #expect(alarm.state == .armedHome)
    }

    @Test func offlineWhileDisarmedTriggersNothingAndArmingIsRefused() {
        var alarm = Alarm(settings: Self.settings)
        #expect(alarm.handle(.availability(board: "door", online: false), now: at(0)).isEmpty)
        let refused = alarm.handle(.command(.arm(.away), code: .none, source: .mqtt), now: at(1))
        #expect(
            records(refused) == [
                .refused(command: "arm away", source: "mqtt", reason: "zone front door: board door is offline")
            ])
        #expect(alarm.state == .disarmed)
        _ = alarm.handle(.availability(board: "door", online: true), now: at(2))
        _ = alarm.handle(.command(.arm(.away), code: .none, source: .mqtt), now: at(3))
        #expect(alarm.state == .arming)
    }

    @Test func armingIsRefusedWithAnInstantZoneOpen() {
        var alarm = Alarm(settings: Self.settings)
        _ = alarm.handle(.reading(board: "door", key: "window", value: "ajar"), now: at(0))
        let refused = alarm.handle(.command(.arm(.night), code: .none, source: .mqtt), now: at(1))
        #expect(records(refused) == [.refused(command: "arm night", source: "mqtt", reason: "zone window is open")])
        #expect(alarm.state == .disarmed)
    }

    @Test func aDelayedZoneStillOpenWhenTheExitDelayEndsStartsTheEntryDelay() {
        var alarm = Alarm(settings: Self.settings)
        _ = alarm.handle(.command(.arm(.away), code: .none, source: .mqtt), now: at(0))
        _ = alarm.handle(.reading(board: "door", key: "door", value: "open"), now: at(1))
        _ = alarm.handle(.tick, now: at(30))
        #expect(alarm.state == .pending && alarm.nextDeadline == at(50))
    }

    @Test func aFollowerStillOpenWhenTheExitDelayEndsStartsTheEntryDelayToo() {
        var alarm = Alarm(settings: Self.settings)
        _ = alarm.handle(.command(.arm(.away), code: .none, source: .mqtt), now: at(0))
        _ = alarm.handle(.reading(board: "hall", key: "motion", value: "1"), now: at(29))
        _ = alarm.handle(.tick, now: at(30))
        #expect(alarm.state == .pending && alarm.cause == "hall")
    }

    @Test func aWindowOpenedDuringTheExitDelayTriggersWhenItEnds() {
        var alarm = Alarm(settings: Self.settings)
        _ = alarm.handle(.command(.arm(.away), code: .none, source: .mqtt), now: at(0))
        _ = alarm.handle(.reading(board: "door", key: "window", value: "ajar"), now: at(10))
        #expect(alarm.state == .arming)
        _ = alarm.handle(.tick, now: at(30))
        #expect(alarm.state == .triggered && alarm.cause == "window")
    }

    @Test func armingAgainOrDisarmingTwiceIsRefused() {
        var alarm = Alarm(settings: Self.settings)
        let twice = alarm.handle(.command(.disarm, code: .valid(name: "anna"), source: .mqtt), now: at(0))
        #expect(records(twice) == [.refused(command: "disarm", source: "mqtt", reason: "already disarmed")])
        armedAway(&alarm)
        let again = alarm.handle(.command(.arm(.home), code: .none, source: .mqtt), now: at(40))
        #expect(
            records(again) == [
                .refused(command: "arm home", source: "mqtt", reason: "already armed_away: disarm first")
            ])
    }

    @Test func aDisarmNeedsACodeAndArmingOneWhenTheSettingsSaySo() {
        var alarm = Alarm(settings: Self.settings)
        armedAway(&alarm)
        let bare = alarm.handle(.command(.disarm, code: .none, source: .mqtt), now: at(40))
        #expect(records(bare) == [.refused(command: "disarm", source: "mqtt", reason: "a code is needed")])
        #expect(alarm.state == .armedAway)
        var settings = Self.settings
        settings.codeArmRequired = true
        var strict = Alarm(settings: settings)
        _ = strict.handle(.command(.arm(.home), code: .none, source: .mqtt), now: at(0))
        #expect(strict.state == .disarmed)
        _ = strict.handle(.command(.arm(.home), code: .valid(name: "anna"), source: .mqtt), now: at(1))
        #expect(strict.state == .armedHome)
    }

    @Test func wrongCodesLockEveryCodeOutForAWhile() {
        var alarm = Alarm(settings: Self.settings)
        armedAway(&alarm)
        let first = alarm.handle(.command(.disarm, code: .wrong, source: .keypad(board: "kp")), now: at(40))
        #expect(records(first) == [.wrongCode(source: "keypad kp")])
        #expect(first.first.map { if case .persist = $0 { true } else { false } } == true, "the count is durable")
        _ = alarm.handle(.command(.disarm, code: .wrong, source: .keypad(board: "kp")), now: at(41))
        let third = alarm.handle(.command(.disarm, code: .wrong, source: .keypad(board: "kp")), now: at(42))
        #expect(records(third) == [.wrongCode(source: "keypad kp"), .lockedOut(attempts: 3, for: .seconds(60))])
        #expect(alarm.isLockedOut(now: at(43)))
        let right = alarm.handle(
            .command(.disarm, code: .valid(name: "anna"), source: .keypad(board: "kp")), now: at(50))
        #expect(
            records(right) == [
                .refused(command: "disarm", source: "keypad kp", reason: "codes are locked out after 3 wrong ones")
            ])
        #expect(alarm.state == .armedAway)
        #expect(alarm.nextDeadline == at(102))
        _ = alarm.handle(.tick, now: at(102))
        #expect(!alarm.isLockedOut(now: at(102)))
        _ = alarm.handle(.command(.disarm, code: .valid(name: "anna"), source: .keypad(board: "kp")), now: at(103))
        #expect(alarm.state == .disarmed && alarm.wrongCodes == 0)
    }

    @Test func aRightCodeResetsTheCount() {
        var alarm = Alarm(settings: Self.settings)
        armedAway(&alarm)
        _ = alarm.handle(.command(.disarm, code: .wrong, source: .mqtt), now: at(40))
        _ = alarm.handle(.command(.disarm, code: .wrong, source: .mqtt), now: at(41))
        _ = alarm.handle(.command(.disarm, code: .valid(name: "anna"), source: .mqtt), now: at(42))
        #expect(alarm.wrongCodes == 0 && alarm.state == .disarmed)
    }

    @Test func aTriggeredAlarmRestoredSoundsAgainForTheTimeThatWasLeft() {
        var alarm = Alarm(settings: Self.settings)
        armedAway(&alarm)
        _ = alarm.handle(.reading(board: "door", key: "window", value: "ajar"), now: at(40))
        let snapshot = alarm.snapshot(now: at(100))
        #expect(snapshot.timerLeftMilliseconds == 120_000)
        // Restarted after a power cut that lasted 20 s (as far as the wall clock tells).
        let restartedAt = at(1000)
        var restored = Alarm(settings: Self.settings, restoring: snapshot, elapsed: .seconds(20), now: restartedAt)
        #expect(restored.state == .triggered && restored.mode == .away && restored.cause == "window")
        #expect(restored.started(now: restartedAt) == [.sirens(on: true), .publish(.triggered)])
        #expect(restored.nextDeadline == restartedAt + .seconds(5))
        _ = restored.handle(.tick, now: restartedAt + .seconds(99))
        #expect(restored.state == .triggered)
        let timedOut = restored.handle(.tick, now: restartedAt + .seconds(100))
        #expect(timedOut.contains(.sirens(on: false)) && restored.state == .armedAway)
    }

    @Test func aTriggerWhoseTimeRanOutWhileAwayDoesNotChirpAtTheRestart() {
        let snapshot = Alarm.Snapshot(
            state: .triggered, mode: .away, cause: "window", leftOut: [], wrongCodes: 0,
            timerLeftMilliseconds: 5_000, lockoutLeftMilliseconds: nil)
        var restored = Alarm(settings: Self.settings, restoring: snapshot, elapsed: .seconds(60), now: at(0))
        #expect(restored.started(now: at(0)) == [.publish(.triggered)])
        let first = restored.handle(.tick, now: at(0))
        #expect(first.contains(.sirens(on: false)) && restored.state == .armedAway)
    }

    @Test func aClockThatWentBackDoesNotLengthenTheSirenTime() {
        let snapshot = Alarm.Snapshot(
            state: .triggered, mode: .away, cause: "window", leftOut: [], wrongCodes: 0,
            timerLeftMilliseconds: 10_000, lockoutLeftMilliseconds: nil)
        var restored = Alarm(settings: Self.settings, restoring: snapshot, elapsed: .seconds(-3600), now: at(0))
        _ = restored.handle(.tick, now: at(10))
        #expect(restored.state == .armedAway)
    }

    @Test func restoreDisarmedStartsDisarmedButKeepsTheLockout() {
        var settings = Self.settings
        settings.restore = .disarmed
        let snapshot = Alarm.Snapshot(
            state: .armedAway, mode: .away, cause: nil, leftOut: [], wrongCodes: 2,
            timerLeftMilliseconds: nil, lockoutLeftMilliseconds: 30_000)
        let restored = Alarm(settings: settings, restoring: snapshot, elapsed: .seconds(10), now: at(0))
        #expect(restored.state == .disarmed && restored.mode == nil)
        #expect(restored.started(now: at(0)) == [.publish(.disarmed)])
        #expect(restored.isLockedOut(now: at(19)) && !restored.isLockedOut(now: at(20)))
        #expect(restored.wrongCodes == 2)
    }

    @Test func armedRestoredStaysArmed() {
        var alarm = Alarm(settings: Self.settings)
        armedAway(&alarm)
        let restored = Alarm(
            settings: Self.settings, restoring: alarm.snapshot(now: at(50)), elapsed: .zero, now: at(0))
        #expect(restored.state == .armedAway && restored.started(now: at(0)) == [.publish(.armedAway)])
    }

    /// Random inputs against the rules every sequence must keep: the sirens sound exactly while
    /// triggered, every published change is persisted first, a disarmed alarm has no mode and no
    /// timer of its own, and the snapshot restores the same state.
    @Test func randomSequencesKeepTheInvariants() async {
        let t0 = self.t0
        await checkModel("alarm", seeds: SeededGenerator.seeds(count: 200)) { seed throws(ModelViolation) in
            var rng = SeededGenerator(seed: seed)
            var alarm = Alarm(settings: Self.settings)
            var sounding = false
            var now = t0
            let readings: [(String, String, [String])] = [
                ("door", "door", ["open", "closed"]), ("door", "window", ["ajar", "closed"]),
                ("hall", "motion", ["1", "0"]), ("hall", "smoke", ["1", "0"])
            ]
            for step in 0..<300 {
                now += .milliseconds(Int64.random(in: 0...20_000, using: &rng))
                let input: Alarm.Input
                switch Int.random(in: 0..<10, using: &rng) {
                case 0..<4:
                    let (board, key, values) = readings.randomElement(using: &rng)!
                    input = .reading(board: board, key: key, value: values.randomElement(using: &rng)!)
                case 4:
                    input = .availability(
                        board: ["door", "hall"].randomElement(using: &rng)!, online: Bool.random(using: &rng))
                case 5, 6:
                    let code: Alarm.Code = [.none, .wrong, .valid(name: "anna"), .valid(name: "anna")].randomElement(
                        using: &rng)!
                    input = .command(.disarm, code: code, source: .mqtt)
                case 7:
                    input = .command(.arm(ArmMode.allCases.randomElement(using: &rng)!), code: .none, source: .mqtt)
                default:
                    input = .tick
                }
                let actions = alarm.handle(input, now: now)
                let context = "step \(step), \(input), state \(alarm.state)"
                if actions.contains(where: { if case .publish = $0 { true } else { false } }) {
                    guard case .persist = actions.first else {
                        throw ModelViolation(description: "published unpersisted: \(context)")
                    }
                }
                for case .sirens(let on) in actions { sounding = on }
                try require(sounding == (alarm.state == .triggered), "sirens \(sounding): \(context)")
                if alarm.state == .disarmed {
                    try require(
                        alarm.mode == nil && alarm.stateDeadline == nil, "disarmed with a mode or timer: \(context)")
                }
                if [.arming, .pending, .triggered].contains(alarm.state) {
                    try require(alarm.stateDeadline != nil, "no timer: \(context)")
                }
                let restored = Alarm(
                    settings: Self.settings, restoring: alarm.snapshot(now: now), elapsed: .zero, now: now)
                try require(restored.state == alarm.state && restored.mode == alarm.mode, "restore differs: \(context)")
            }
        }
    }
}
