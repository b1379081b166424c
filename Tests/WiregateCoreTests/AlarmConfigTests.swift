import Testing

@testable import WiregateCore

/// The `alarm:` section: what it reads, and every mistake with its file, line and key.
@Suite struct AlarmConfigTests {
    static let boards = """
        gateway: { id: house-1, state_dir: /var/lib/wiregate }
        mqtt: { host: 127.0.0.1, port: 1883, base_topic: wiregate, keepalive: 10 }
        boards:
          - { name: front-door, match: { path: /dev/ttyACM0 }, protocol: kv, silence_timeout: 90s }
          - { name: siren, match: { path: /dev/ttyACM1 }, protocol: kv, commands: ["SIREN=ON", "SIREN=OFF"] }
          - { name: keypad, match: { path: /dev/ttyACM2 }, protocol: kv }
        """

    static let hash = "$y$j9T$P1WFmrRM9NeL6ttBAod960$8HVwP.wqjVYqOTmVjIlRwBy0WSNgswPAg4XXGYOGqBA"

    static func yaml(_ alarm: String) -> String {
        boards + "\nalarm:\n" + alarm
    }

    static let valid = yaml(
        """
          exit_delay: { away: 30s }
          entry_delay: 20s
          siren_timeout: 3m
          after_timeout: disarm
          restore: disarmed
          lockout: { attempts: 3, duration: 10m }
          codes: [{ name: anna, hash: '\(hash)' }]
          zones:
            - { name: front door, board: front-door, key: door, open: open, type: delayed }
            - { name: window, board: front-door, key: window, closed: closed, type: instant, when_unavailable: ignore }
            - { name: hall, board: front-door, key: motion, open: ["1", "yes"], type: follower, bypass: [home, night] }
          sirens: [{ board: siren, on: SIREN=ON, off: SIREN=OFF }]
          keypads: [{ board: keypad }]
        """)

    func error(_ yaml: String) -> String? { configError(yaml) }

    @Test func aFullSectionIsRead() throws {
        let config = try GatewayConfig.parse(yaml: Self.valid, file: "test.yaml")
        let alarm = try #require(config.alarm)
        let settings = alarm.settings
        #expect(settings.exitDelay == [.away: .seconds(30)])
        #expect(settings.entryDelay == Dictionary(uniqueKeysWithValues: ArmMode.allCases.map { ($0, .seconds(20)) }))
        #expect(
            settings.sirenTimeout == .seconds(180) && settings.afterTimeout == .disarm && settings.restore == .disarmed)
        #expect(settings.lockoutAttempts == 3 && settings.lockoutDuration == .seconds(600))
        #expect(settings.codes == [.init(name: "anna", hash: Self.hash)])
        #expect(settings.zones.map(\.kind) == [.delayed, .instant, .follower])
        #expect(settings.zones[0].openWhen == .oneOf(["open"]))
        #expect(settings.zones[1].openWhen == .not("closed") && !settings.zones[1].opensWhenUnavailable)
        #expect(settings.zones[2].openWhen == .oneOf(["1", "yes"]) && settings.zones[2].bypassedIn == [.home, .night])
        #expect(settings.sirens == [.init(board: "siren", on: "SIREN=ON", off: "SIREN=OFF")])
        #expect(alarm.keypads == [.init(board: "keypad", actionKey: "action", codeKey: "code")])
        #expect(!alarm.allowDisarmWithoutTLS)
        #expect(config.boards[0].silenceTimeout == .seconds(90) && config.boards[1].silenceTimeout == nil)
    }

    @Test func withoutTheSectionThereIsNoAlarm() throws {
        #expect(try GatewayConfig.parse(yaml: Self.boards, file: "test.yaml").alarm == nil)
    }

    static let zone = "  zones: [{ name: door, board: front-door, key: door, open: open, type: instant }]\n"
    static let code = "  codes: [{ name: anna, hash: '\(hash)' }]\n"

    static let mistakes: [(alarm: String, expected: String)] = [
        // A siren line the board's allow-list does not have: the alarm writes through it.
        (
            zone + code + "  sirens: [{ board: siren, on: SIREN=LOUD, off: SIREN=OFF }]",
            "test.yaml:10:32: alarm.sirens[0].on: 'SIREN=LOUD' is not in the commands allow-list of board 'siren'"
        ),
        (
            "  zones: [{ name: door, board: back-door, key: door, open: open, type: instant }]\n" + code,
            "test.yaml:8:32: alarm.zones[0].board: no board named 'back-door' in boards:"
        ),
        (
            "  zones: [{ name: door, board: front-door, key: door, type: instant }]\n" + code,
            "test.yaml:8:19: alarm.zones[0].name: zone 'door' needs 'open: [values]' or 'closed: value'"
        ),
        (
            "  zones: [{ name: door, board: front-door, key: door, open: a, closed: b, type: instant }]\n" + code,
            "test.yaml:8:72: alarm.zones[0].closed: give 'open'"
        ),
        (
            "  zones: [{ name: door, board: front-door, key: door, open: open, type: sometimes }]\n" + code,
            "test.yaml:8:73: alarm.zones[0].type: 'sometimes' is not one of instant, delayed, follower, always"
        ),
        (
            "  zones: [{ name: s, board: front-door, key: smoke, open: '1', type: always, bypass: [home] }]\n" + code,
            "alarm.zones[0].bypass: an 'always' zone (smoke, tamper, panic) is never bypassed"
        ),
        (
            zone + zone.replacingOccurrences(of: "  zones", with: "  sirens") + code,
            "alarm.sirens[0].name: unknown key"
        ),
        (zone, "alarm.zones: the alarm needs at least one code under 'codes:'"),
        // A code written in clear: refused, and never echoed back.
        (
            zone + "  codes: [{ name: anna, hash: '1234' }]\n",
            "test.yaml:9:31: alarm.codes[0].hash: is not a crypt(3) hash: make one with 'mkpasswd -m yescrypt'"
        ),
        (zone + code + "  code: 1234\n", "test.yaml:10:3: alarm.code: codes are kept only as hashes"),
        (zone + code + "  exit_delay: { weekend: 10s }\n", "alarm.exit_delay.weekend: unknown key"),
        (zone + code + "  exit_delay: 20m\n", "alarm.exit_delay: 20m is out of range"),
        (zone + code + "  after_timeout: panic\n", "alarm.after_timeout: 'panic' is not one of rearm, disarm"),
        (zone + code + "  lockout: { attempts: 0 }\n", "alarm.lockout.attempts: 0 is out of range"),
        (zone + code + "  keypads: [{ board: nowhere }]\n", "alarm.keypads[0].board: no board named 'nowhere'")
    ]

    @Test(arguments: mistakes)
    func mistakesSayWhatAndWhere(alarm: String, expected: String) {
        let message = error(Self.yaml(alarm))
        #expect(message?.contains(expected) == true, "\(message ?? "no error")")
        #expect(message?.contains("1234") != true, "a code is never echoed")
    }

    @Test func aBoardNamedAlarmClashesWithTheAlarmsTopics() {
        let yaml =
            Self.boards + "\n  - { name: alarm, match: { path: /dev/ttyACM3 }, protocol: kv }\nalarm:\n" + Self.zone
            + Self.code
        #expect(
            error(yaml)?.contains("boards[3].name: a board may not be named 'alarm'") == true, "\(error(yaml) ?? "")")
    }

    @Test func zoneNamesAreUnique() {
        let twice = """
              zones:
                - { name: door, board: front-door, key: door, open: open, type: instant }
                - { name: door, board: front-door, key: window, open: open, type: instant }

            """
        let message = error(Self.yaml(twice + Self.code))
        #expect(
            message?.contains("alarm.zones[1].name: the zone name 'door' is used twice") == true, "\(message ?? "")")
    }
}
