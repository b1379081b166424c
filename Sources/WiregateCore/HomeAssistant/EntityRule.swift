/// The Home Assistant entity platforms a board's key can become (`homeassistant.entities[].component`).
public enum EntityComponent: String, Sendable, CaseIterable, Codable {
    /// On or off from the key's value: a door, a motion detector, smoke.
    case binarySensor = "binary_sensor"
    /// The key's value itself: a temperature, a battery level.
    case sensor
    /// A relay: its on and off lines are written to the board.
    case `switch`
    /// A siren that is not the alarm's (a chime, a strobe): its lines are written to the board.
    case siren
    /// One line written to the board when pressed.
    case button
    /// Each value is an event (a button press, a keypad beep), not a state.
    case event
    /// The gateway's alarm panel; never from a rule.
    case alarmControlPanel = "alarm_control_panel"

    /// Whether Home Assistant sends commands for it (which the board's allow-list must hold).
    public var takesCommands: Bool { self == .switch || self == .siren || self == .button }
}

/// One entry of `homeassistant.entities:`, or of the built-in defaults: which keys of which
/// boards become which entity, with what Home Assistant needs to show them right.
///
/// Rules are tried in the order written, the defaults after them; the first that matches a
/// board's key decides, and a key no rule matches is not announced.
public struct EntityRule: Sendable, Equatable {
    /// `board`: a board name or a glob over board names; nil: every board.
    public var board: String?
    /// `key`: a subtopic (`door`, `env/temperature`) or a glob over subtopics (`*/temperature`).
    public var key: String
    /// `ignore: true`: the keys it matches are not announced, whatever a later rule says.
    public var ignore = false
    /// `component`.
    public var component: EntityComponent = .sensor
    /// `device_class`, as Home Assistant names it (`door`, `temperature`); nil: none.
    public var deviceClass: String?
    /// `on`: the values that mean on, for a binary sensor (compared exactly, as the alarm's zones
    /// compare); nil: the alarm zone's open values when the key is a zone, else the common ones
    /// (compared without case).
    public var onValues: [String]?
    /// `off`: the values that mean off, for a binary sensor; nil: as `onValues`.
    public var offValues: [String]?
    /// `unit`: the sensor's unit of measurement (`°C`, `%`).
    public var unit: String?
    /// `state_class`: `measurement`, `total` or `total_increasing`.
    public var stateClass: String?
    /// `entity_category`: `diagnostic` or `config`; nil: a primary entity.
    public var entityCategory: String?
    /// `name`: the entity's name under its device; nil: made from the key.
    public var name: String?
    /// `icon`: an `mdi:` icon.
    public var icon: String?
    /// `command_on`: the line a switch or siren writes to switch on (in the board's allow-list).
    public var commandOn: String?
    /// `command_off`: the line a switch or siren writes to switch off (in the board's allow-list).
    public var commandOff: String?
    /// `press`: the line a button writes (in the board's allow-list).
    public var press: String?
    /// `event_types`: the values an event entity fires; nil: every value is an event type.
    public var eventTypes: [String]?

    /// A rule for `key` on `board`, every other field on its default (a plain sensor).
    /// - Parameters:
    ///   - board: a board name or glob; nil for every board.
    ///   - key: a subtopic or a glob over subtopics.
    ///   - component: what the key becomes.
    ///   - deviceClass: Home Assistant's device class; nil for none.
    public init(board: String? = nil, key: String, component: EntityComponent = .sensor, deviceClass: String? = nil) {
        self.board = board
        self.key = key
        self.component = component
        self.deviceClass = deviceClass
    }

    /// Whether the rule is written for one board and one key exactly (no glob): its entity is
    /// announced at the start, before the board says anything.
    public var isDeclared: Bool {
        guard let board else { return false }
        return !Self.isPattern(board) && !Self.isPattern(key)
    }

    /// Whether it matches `key` of the board named `board`.
    public func matches(board name: String, key subtopic: String) -> Bool {
        if let board, board != name, !(Self.isPattern(board) && Glob.matches(board, name)) { return false }
        return key == subtopic || (Self.isPattern(key) && Glob.matches(key, subtopic))
    }

    static func isPattern(_ text: String) -> Bool { text.contains { "*?[".contains($0) } }
}

extension EntityRule {
    /// The values a binary sensor takes as on when neither the rule nor an alarm zone says.
    public static let commonOnValues = [
        "open", "opened", "on", "1", "true", "yes", "detected", "motion", "active", "wet", "leak", "alarm",
        "smoke", "tamper", "tampered", "triggered"
    ]
    /// The values a binary sensor takes as off when neither the rule nor an alarm zone says.
    public static let commonOffValues = [
        "closed", "close", "off", "0", "false", "no", "clear", "idle", "inactive", "dry", "ok", "none", "normal"
    ]

    /// The built-in rules, after the config's: the common key names, matched as a whole subtopic
    /// or as its last level (`door`, `hall/door`), and the MySensors types (`<prefix>-out/node/child/1/ack/type`).
    public static let defaults: [EntityRule] = {
        var rules: [EntityRule] = []
        func add(_ names: [String], _ make: (String) -> EntityRule) {
            for name in names {
                rules.append(make(name))
                var nested = make(name)
                nested.key = "*/" + name
                rules.append(nested)
            }
        }
        let binary: [(names: [String], deviceClass: String)] = [
            (["door"], "door"), (["window"], "window"), (["garage"], "garage_door"), (["contact"], "opening"),
            (["motion", "pir"], "motion"), (["occupancy"], "occupancy"), (["presence"], "presence"),
            (["smoke"], "smoke"), (["gas"], "gas"), (["co"], "carbon_monoxide"),
            (["moisture", "leak", "water"], "moisture"), (["tamper"], "tamper"), (["vibration"], "vibration")
        ]
        for (names, deviceClass) in binary {
            add(names) { EntityRule(key: $0, component: .binarySensor, deviceClass: deviceClass) }
        }
        let sensors: [(names: [String], deviceClass: String?, unit: String, diagnostic: Bool, total: Bool)] = [
            (["temperature", "temp"], "temperature", "°C", false, false),
            (["humidity"], "humidity", "%", false, false),
            (["battery"], "battery", "%", true, false),
            (["voltage", "vcc"], "voltage", "V", true, false),
            (["pressure"], "pressure", "hPa", false, false),
            (["illuminance", "lux"], "illuminance", "lx", false, false),
            (["co2"], "carbon_dioxide", "ppm", false, false),
            (["rssi"], "signal_strength", "dBm", true, false),
            (["power"], "power", "W", false, false),
            (["energy"], "energy", "kWh", false, true)
        ]
        for sensor in sensors {
            add(sensor.names) { name in
                var rule = EntityRule(key: name, component: .sensor, deviceClass: sensor.deviceClass)
                rule.unit = sensor.unit
                rule.stateClass = sensor.total ? "total_increasing" : "measurement"
                rule.entityCategory = sensor.diagnostic ? "diagnostic" : nil
                return rule
            }
        }
        // MySensors: set messages (command 1) by type, and the node's battery (internal 0 on child 255).
        let mysensors: [(type: Int, component: EntityComponent, deviceClass: String?, unit: String?)] = [
            (0, .sensor, "temperature", "°C"), (1, .sensor, "humidity", "%"), (16, .binarySensor, nil, nil),
            (38, .sensor, "voltage", "V"), (23, .sensor, "illuminance", "lx")
        ]
        var battery = EntityRule(key: "*-out/*/255/3/*/0", component: .sensor, deviceClass: "battery")
        battery.unit = "%"
        battery.stateClass = "measurement"
        battery.entityCategory = "diagnostic"
        battery.name = "Battery"
        rules.append(battery)
        for entry in mysensors {
            var rule = EntityRule(
                key: "*-out/*/*/1/*/\(entry.type)", component: entry.component, deviceClass: entry.deviceClass)
            rule.unit = entry.unit
            if entry.component == .sensor { rule.stateClass = "measurement" }
            rules.append(rule)
        }
        return rules
    }()
}
