/// One entity as Home Assistant's MQTT discovery announces it.
public struct DiscoveryEntity: Sendable, Equatable {
    /// Its platform.
    public var component: EntityComponent
    /// Its device's node id: `wiregate_<gateway>` or `wiregate_<gateway>_<board identity>`.
    public var nodeID: String
    /// Its id under the device: `key_<subtopic>` for a board's key, `board_…` or `gateway_…` for
    /// the gateway's own; never the same for two entities of a device.
    public var objectID: String
    /// The board it belongs to; nil for the gateway's.
    public var board: String?
    /// The board's key (subtopic) it shows; nil for an entity the gateway makes (connectivity, alarm).
    public var key: String?
    /// The entity's config without `device` and `origin` (which `DiscoveryCatalog.message` adds).
    public var fields: [String: DiscoveryJSON]

    /// `<prefix>/<component>/<node_id>/<object_id>/config`.
    public func configTopic(prefix: String) -> String {
        "\(prefix)/\(component.rawValue)/\(nodeID)/\(objectID)/config"
    }

    /// The entity's `unique_id`: its node and object ids, stable across restarts, replugs and
    /// renames, with a `:` between that neither can hold (so no two entities' ids run together).
    public var uniqueID: String { "\(nodeID):\(objectID)" }
}

/// What wiregate announces to Home Assistant, worked out from the config alone: pure, so that
/// every payload is tested without a broker.
///
/// Devices: the gateway (`wiregate_<gateway>`, with diagnostics read from the retained health
/// report and the alarm panel), and one per board, identified by the board's identity (its USB
/// serial number, hello name or port path, else its name; never the tty), `via_device` the gateway.
/// Every entity of a board is available while both the gateway's and the board's status say
/// `online` (`availability_mode: all`).
public struct DiscoveryCatalog: Sendable {
    /// The config the topics and rules come from.
    public let config: GatewayConfig
    /// Its `homeassistant:` section.
    public let settings: GatewayConfig.HomeAssistant
    /// wiregate's version, in every `origin` and the gateway device.
    public let version: String

    /// The catalog of a config with a `homeassistant:` section; nil without one.
    /// - Parameters:
    ///   - config: a validated config.
    ///   - version: wiregate's version.
    public init?(config: GatewayConfig, version: String) {
        guard let settings = config.homeAssistant else { return nil }
        self.config = config
        self.settings = settings
        self.version = version
    }

    // MARK: - Devices

    /// The gateway's node id and device identifier.
    public var gatewayNodeID: String { "wiregate_" + Self.slug(config.gateway.id) }

    /// A board's node id, from its identity: a renamed board, or an adopted one named later in the
    /// config with the same `match:`, keeps its device and entities.
    public func nodeID(of board: GatewayConfig.Board) -> String {
        guard let identity = board.identity else { return gatewayNodeID + "_board_" + Self.slug(board.name) }
        return gatewayNodeID + "_" + Self.slug("\(identity.source.rawValue)_\(identity.value)")
    }

    /// The `device` block of the gateway.
    public var gatewayDevice: DiscoveryJSON {
        [
            "identifiers": [.string(gatewayNodeID)], "name": .string("wiregate \(config.gateway.id)"),
            "manufacturer": "wiregate", "model": "Gateway", "sw_version": .string(version)
        ]
    }

    /// The `device` block of a board.
    public func device(of board: GatewayConfig.Board) -> DiscoveryJSON {
        [
            "identifiers": [.string(nodeID(of: board))], "name": .string(board.name), "manufacturer": "wiregate",
            "model": .string("\(board.protocolName) board"), "via_device": .string(gatewayNodeID)
        ]
    }

    /// The `origin` block: who announced it.
    public var origin: DiscoveryJSON { ["name": "wiregate", "sw_version": .string(version)] }

    // MARK: - Entities

    /// The gateway's own entities: its diagnostics (backlog per sink, journal size, boards online,
    /// clock synchronised, events dropped, all from the retained health report, so they say the
    /// truth of the last report even while the broker was away) and the alarm panel.
    public func gatewayEntities() -> [DiscoveryEntity] {
        let availability: [String: DiscoveryJSON] = ["availability_topic": .string(config.gatewayStatusTopic)]
        func diagnostic(
            _ id: String, _ component: EntityComponent, name: String, template: String,
            extra: [String: DiscoveryJSON] = [:]
        ) -> DiscoveryEntity {
            var fields = availability.merging(extra) { $1 }
            fields["name"] = .string(name)
            fields["state_topic"] = .string(config.healthTopic)
            fields["value_template"] = .string(template)
            fields["entity_category"] = "diagnostic"
            return entity(component, node: gatewayNodeID, object: "gateway_" + id, board: nil, key: nil, fields: fields)
        }
        var entities: [DiscoveryEntity] = []
        let sinks = ["mqtt"] + (config.backend != nil ? ["backend"] : [])
        for sink in sinks {
            entities.append(
                diagnostic(
                    "backlog_\(sink)", .sensor, name: "Backlog \(sink == "mqtt" ? "broker" : sink)",
                    template:
                        "{{ value_json.backlog.get(\(Self.jinja(sink)), {}).values() | map(attribute='pending') | sum }}",
                    extra: ["unit_of_measurement": "events", "state_class": "measurement", "icon": "mdi:tray-full"]))
        }
        entities.append(
            diagnostic(
                "journal_bytes", .sensor, name: "Journal size", template: "{{ value_json.journal.bytes }}",
                extra: ["device_class": "data_size", "unit_of_measurement": "B", "state_class": "measurement"]))
        entities.append(
            diagnostic(
                "boards_online", .sensor, name: "Boards online",
                template: "{{ value_json.boards.values() | selectattr('online') | list | count }}",
                extra: ["state_class": "measurement", "icon": "mdi:usb-port"]))
        entities.append(
            diagnostic(
                "clock_synchronised", .binarySensor, name: "Clock synchronised",
                template: "{{ 'ON' if value_json.clock.synchronised else 'OFF' }}", extra: ["icon": "mdi:clock-check"]))
        entities.append(
            diagnostic(
                "events_dropped", .sensor, name: "Events dropped",
                template: "{{ value_json.journal.dropped.values() | sum }}",
                extra: ["state_class": "total_increasing", "icon": "mdi:delete-alert"]))
        if let alarm = config.alarm {
            var fields = availability
            fields["name"] = "Alarm"
            fields["state_topic"] = .string(config.alarmStateTopic)
            fields["command_topic"] = .string(config.alarmCommandTopic)
            // The code goes to the gateway, which checks it against its hashes; Home Assistant
            // only shows the keypad. `tojson` keeps a code holding a quote one JSON string.
            fields["code"] = "REMOTE_CODE"
            fields["code_arm_required"] = .bool(alarm.settings.codeArmRequired)
            fields["code_disarm_required"] = true
            fields["command_template"] = "{{ {'action': action, 'code': code} | tojson }}"
            fields["supported_features"] = ["arm_home", "arm_away", "arm_night", "arm_vacation"]
            entities.append(
                entity(
                    .alarmControlPanel, node: gatewayNodeID, object: "gateway_alarm", board: nil, key: nil,
                    fields: fields))
        }
        return entities
    }

    /// What every board announces as soon as it is known, before it sends anything: its
    /// connectivity (so that its device appears at once), the keys the config names exactly,
    /// its switches, sirens and buttons, and, for a siren of the alarm, whether it sounds.
    public func boardEntities(_ board: GatewayConfig.Board) -> [DiscoveryEntity] {
        let node = nodeID(of: board)
        var entities: [DiscoveryEntity] = []
        var connectivity: [String: DiscoveryJSON] = [
            "name": "Connected", "device_class": "connectivity", "entity_category": "diagnostic",
            "state_topic": .string(config.boardStatusTopic(board.name)), "payload_on": "online",
            "payload_off": "offline", "availability_topic": .string(config.gatewayStatusTopic)
        ]
        connectivity["object_id"] = .string(Self.entitySlug(board.name + "_connected"))
        entities.append(
            entity(
                .binarySensor, node: node, object: "board_connected", board: board.name, key: nil, fields: connectivity)
        )
        if config.alarm?.settings.sirens.contains(where: { $0.board == board.name }) == true {
            // The alarm's sirens are the alarm's: Home Assistant sees them sound, and silences them
            // by disarming the panel (the router refuses their lines from the broker).
            let fields: [String: DiscoveryJSON] = [
                "name": "Alarm siren", "device_class": "sound", "state_topic": .string(config.alarmStateTopic),
                "value_template": "{{ 'ON' if value == 'triggered' else 'OFF' }}",
                "availability_topic": .string(config.gatewayStatusTopic),
                "object_id": .string(Self.entitySlug(board.name + "_alarm_siren"))
            ]
            entities.append(
                entity(
                    .binarySensor, node: node, object: "board_alarm_siren", board: board.name, key: nil, fields: fields)
            )
        }
        for rule in settings.rules where rule.isDeclared && rule.board == board.name && !rule.ignore {
            // The first rule for the key decides, as for a key the board sends.
            guard self.rule(forBoard: board.name, key: rule.key) == rule,
                let declared = entity(board, key: rule.key)
            else { continue }
            entities.append(declared)
        }
        return entities
    }

    /// The rule that decides `key` of the board named `board`; nil when none matches or it says ignore.
    public func rule(forBoard board: String, key: String) -> EntityRule? {
        guard let rule = settings.allRules.first(where: { $0.matches(board: board, key: key) }), !rule.ignore else {
            return nil
        }
        return rule
    }

    /// The entity a board's key becomes; nil when no rule maps it (it is not announced).
    public func entity(_ board: GatewayConfig.Board, key: String) -> DiscoveryEntity? {
        guard let rule = rule(forBoard: board.name, key: key) else { return nil }
        let state = config.entityStateTopic(board: board.name, subtopic: key)
        var fields: [String: DiscoveryJSON] = [
            "name": .string(rule.name ?? Self.name(ofKey: key, deviceClass: rule.deviceClass)),
            "availability": [
                ["topic": .string(config.gatewayStatusTopic)], ["topic": .string(config.boardStatusTopic(board.name))]
            ],
            "availability_mode": "all",
            "object_id": .string(Self.entitySlug(board.name + "_" + key))
        ]
        if let deviceClass = rule.deviceClass { fields["device_class"] = .string(deviceClass) }
        if let category = rule.entityCategory { fields["entity_category"] = .string(category) }
        if let icon = rule.icon { fields["icon"] = .string(icon) }
        switch rule.component {
        case .binarySensor:
            fields["state_topic"] = .string(state)
            fields["value_template"] = .string(binaryTemplate(rule, board: board.name, key: key))
        case .sensor:
            fields["state_topic"] = .string(state)
            if let unit = rule.unit { fields["unit_of_measurement"] = .string(unit) }
            if let stateClass = rule.stateClass { fields["state_class"] = .string(stateClass) }
        case .switch, .siren:
            fields["command_topic"] = .string(config.boardTopicPrefix(board.name) + "set")
            fields["payload_on"] = .string(rule.commandOn ?? "")
            fields["payload_off"] = .string(rule.commandOff ?? "")
            // The state, when the board reports the key: its common on/off values.
            fields["state_topic"] = .string(state)
            fields["value_template"] = .string(
                Self.onOffTemplate(on: EntityRule.commonOnValues, off: EntityRule.commonOffValues))
            fields["state_on"] = "ON"
            fields["state_off"] = "OFF"
            if rule.component == .siren {
                // Without a template a siren sends JSON (`{"state": "ON"}`): the board gets its line.
                fields["command_template"] = "{{ value }}"
                fields["support_duration"] = false
                fields["support_volume_set"] = false
            }
        case .button:
            fields["command_topic"] = .string(config.boardTopicPrefix(board.name) + "set")
            fields["payload_press"] = .string(rule.press ?? "")
        case .event:
            // Published there not retained, from live reads only: a retained press, or one the
            // journal replays after an outage, would fire the automations again.
            fields["state_topic"] = .string(state)
            fields["event_types"] = .array((rule.eventTypes ?? []).map { .string($0) })
            fields["value_template"] = "{{ {'event_type': value} | tojson }}"
        case .alarmControlPanel:
            return nil
        }
        return entity(
            rule.component, node: nodeID(of: board), object: "key_" + Self.slug(key), board: board.name, key: key,
            fields: fields)
    }

    private func entity(
        _ component: EntityComponent, node: String, object: String, board: String?, key: String?,
        fields: [String: DiscoveryJSON]
    ) -> DiscoveryEntity {
        var fields = fields
        fields["unique_id"] = .string("\(node):\(object)")
        if fields["object_id"] == nil, board == nil {
            fields["object_id"] = .string(
                Self.entitySlug(config.gateway.id + "_" + object.dropFirst("gateway_".count)))
        }
        return DiscoveryEntity(
            component: component, nodeID: node, objectID: object, board: board, key: key, fields: fields)
    }

    /// A binary sensor's template: the rule's values, else the alarm zone's on this key (so Home
    /// Assistant and the alarm agree on what open is), else the common ones; `None` (unknown) for
    /// a value it does not know.
    func binaryTemplate(_ rule: EntityRule, board: String, key: String) -> String {
        if rule.onValues != nil || rule.offValues != nil {
            switch (rule.onValues, rule.offValues) {
            case (let on?, let off?): return Self.onOffTemplate(on: on, off: off, ignoringCase: false)
            case (let on?, nil): return "{{ 'ON' if value in \(Self.jinja(on)) else 'OFF' }}"
            case (nil, let off?): return "{{ 'OFF' if value in \(Self.jinja(off)) else 'ON' }}"
            default: break
            }
        }
        if let zone = config.alarm?.settings.zones.first(where: { $0.board == board && $0.key == key }) {
            switch zone.openWhen {
            case .oneOf(let values): return "{{ 'ON' if value in \(Self.jinja(values.sorted())) else 'OFF' }}"
            case .not(let closed): return "{{ 'OFF' if value == \(Self.jinja(closed)) else 'ON' }}"
            }
        }
        return Self.onOffTemplate(on: EntityRule.commonOnValues, off: EntityRule.commonOffValues)
    }

    static func onOffTemplate(on: [String], off: [String], ignoringCase: Bool = true) -> String {
        let value = ignoringCase ? "(value | lower)" : "value"
        return "{% if \(value) in \(jinja(on)) %}ON{% elif \(value) in \(jinja(off)) %}OFF{% else %}None{% endif %}"
    }

    // MARK: - Messages

    /// The retained config of one entity (per-component discovery): its fields, its device and the origin.
    public func message(for entity: DiscoveryEntity, device: DiscoveryJSON) -> (topic: String, payload: String) {
        var fields = entity.fields
        fields["device"] = device
        fields["origin"] = origin
        return (entity.configTopic(prefix: settings.prefix), DiscoveryJSON.object(fields).text)
    }

    /// `<prefix>/device/<node_id>/config`, device-based discovery (Home Assistant 2024.11 and later).
    public func deviceTopic(node: String) -> String { "\(settings.prefix)/device/\(node)/config" }

    /// One device's config with every component (device-based discovery); `removed` are the object
    /// ids of components no longer produced, sent once with only their platform so Home Assistant
    /// removes them.
    public func deviceMessage(
        node: String, device: DiscoveryJSON, entities: [DiscoveryEntity],
        removed: [(objectID: String, component: EntityComponent)] = []
    ) -> (topic: String, payload: String) {
        var components: [String: DiscoveryJSON] = [:]
        for (objectID, component) in removed { components[objectID] = ["platform": .string(component.rawValue)] }
        for entity in entities {
            var fields = entity.fields
            fields["platform"] = .string(entity.component.rawValue)
            components[entity.objectID] = .object(fields)
        }
        let document: DiscoveryJSON = ["device": device, "origin": origin, "components": .object(components)]
        return (deviceTopic(node: node), document.text)
    }

    // MARK: - Names

    /// An id Home Assistant takes in a discovery topic (`[a-zA-Z0-9_-]`): anything else becomes
    /// `_`, and when anything had to change, a short hash of the original keeps two keys apart
    /// (`a/b` and `a_b`).
    public static func slug<S: StringProtocol>(_ text: S) -> String {
        var out = ""
        var changed = false
        for scalar in text.unicodeScalars {
            if scalar.isASCII,
                scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "_" || scalar == "-"
            {
                out.unicodeScalars.append(scalar)
            } else {
                changed = true
                out.append("_")
            }
        }
        if out.isEmpty { return "x" + fnv(text) }
        return changed ? out + "_" + fnv(text) : out
    }

    /// What Home Assistant makes of an `object_id` for the entity id: lower case, each run of
    /// anything but ASCII letters and digits one `_`, none at the ends (`front-door_door` →
    /// `front_door_door`).
    public static func entitySlug<S: StringProtocol>(_ text: S) -> String {
        var out = ""
        for scalar in text.lowercased().unicodeScalars {
            if scalar.isASCII, scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) {
                out.unicodeScalars.append(scalar)
            } else if !out.isEmpty, out.last != "_" {
                out.append("_")
            }
        }
        while out.last == "_" { out.removeLast() }
        return out.isEmpty ? "unnamed" : out
    }

    /// FNV-1a over the UTF-8 bytes, as 8 hex digits: stable across runs and machines (unlike `hashValue`).
    static func fnv<S: StringProtocol>(_ text: S) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in text.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// A person's name for a key: `env/temperature` → `Env temperature`; a MySensors subtopic →
    /// `Node 1 child 2 temperature`.
    public static func name(ofKey key: String, deviceClass: String?) -> String {
        let levels = key.split(separator: "/").map(String.init)
        if levels.count == 6, levels[0].hasSuffix("-out") {
            let what = deviceClass.map { $0.replacingOccurrences(of: "_", with: " ") } ?? "type \(levels[5])"
            return "Node \(levels[1]) child \(levels[2]) \(what)"
        }
        let words = levels.joined(separator: " ").replacingOccurrences(of: "_", with: " ").replacingOccurrences(
            of: "-", with: " ")
        return words.prefix(1).uppercased() + words.dropFirst()
    }

    /// A Jinja string literal: single quotes, with `\` and `'` escaped.
    static func jinja(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'"
    }

    /// A Jinja list of string literals.
    static func jinja(_ values: [String]) -> String { "[" + values.map { jinja($0) }.joined(separator: ", ") + "]" }
}
