import Foundation
import Testing

@testable import WiregateCore

/// Home Assistant discovery, without Home Assistant: the `homeassistant:` section and its
/// mistakes, which keys of each protocol become which entity, the payloads, and the plan that
/// clears what a start no longer produces.
@Suite struct HomeAssistantDiscoveryTests {
    static let hash = "$y$j9T$P1WFmrRM9NeL6ttBAod960$8HVwP.wqjVYqOTmVjIlRwBy0WSNgswPAg4XXGYOGqBA"

    static func yaml(boards extra: String = "", homeassistant: String = "{}", alarm: String = "") -> String {
        """
        gateway: { id: house-1, state_dir: /var/lib/wiregate }
        mqtt: { host: 127.0.0.1, port: 1883, base_topic: wiregate }
        boards:
          - { name: front-door, match: { serial: "8573A1" }, protocol: kv }
          - { name: siren, match: { hello: siren-1 }, protocol: kv, commands: ["SIREN=ON", "SIREN=OFF", "CHIME=1", "CHIME=0", "RESET", "RELAY=*"] }
          - { name: climate, match: { usb_path: "1-1.2" }, protocol: json }
          - { name: sensors, match: { path: /dev/ttyUSB0 }, protocol: mysensors }
          - { name: weather, match: { path: /dev/ttyUSB1 }, protocol: influx }
        \(extra)
        homeassistant: \(homeassistant)
        \(alarm)
        """
    }

    static let alarm = """
        alarm:
          codes: [{ name: anna, hash: '\(hash)' }]
          zones: [{ name: front, board: front-door, key: door, open: [open, ajar], type: delayed }]
          sirens: [{ board: siren, on: SIREN=ON, off: SIREN=OFF }]
          code_arm_required: true
        """

    func catalog(_ yaml: String) throws -> DiscoveryCatalog {
        try #require(DiscoveryCatalog(config: try GatewayConfig.parse(yaml: yaml, file: "test.yaml"), version: "9.9"))
    }

    func error(_ yaml: String) -> String? { configError(yaml) }

    /// The subtopics a board's real line gives, through its own decoder.
    func subtopics(_ catalog: DiscoveryCatalog, board name: String, line: String) throws -> [String] {
        let board = try #require(catalog.config.boards.first { $0.name == name })
        guard
            case .events(let events) = EventBuilder(board: board, config: catalog.config).outcome(
                for: line, receivedAt: Date())
        else { throw TestFailure("\(line) gave no events") }
        return events.map(\.subtopic)
    }

    struct TestFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    func board(_ catalog: DiscoveryCatalog, _ name: String) throws -> GatewayConfig.Board {
        try #require(catalog.config.boards.first { $0.name == name })
    }

    // MARK: - The section

    @Test func offWithoutTheSectionAndDefaultsWithAnEmptyOne() throws {
        let without = try GatewayConfig.parse(
            yaml: Self.yaml().replacingOccurrences(of: "homeassistant: {}", with: ""), file: "test.yaml")
        #expect(without.homeAssistant == nil && DiscoveryCatalog(config: without, version: "1") == nil)
        let settings = try #require(try GatewayConfig.parse(yaml: Self.yaml(), file: "test.yaml").homeAssistant)
        #expect(settings.prefix == "homeassistant" && settings.statusTopic == "homeassistant/status")
        #expect(settings.mode == .component && settings.republishDelay == .seconds(5) && settings.useDefaults)
        let custom = try #require(
            try GatewayConfig.parse(
                yaml: Self.yaml(
                    homeassistant: "{ prefix: ha, discovery: device, republish_delay: 200ms, defaults: false }"),
                file: "test.yaml"
            ).homeAssistant)
        #expect(custom.prefix == "ha" && custom.statusTopic == "ha/status" && custom.mode == .device)
        #expect(custom.republishDelay == .milliseconds(200) && custom.allRules.isEmpty)
    }

    @Test func everyMistakeSaysWhatAndWhere() {
        let cases: [(String, String)] = [
            ("{ prefix: 'home/#' }", "homeassistant.prefix: the prefix contains a wildcard"),
            ("{ discovery: both }", "homeassistant.discovery: 'both' is not one of component, device"),
            ("{ entities: [{ key: door }] }", "homeassistant.entities[0].component"),
            (
                "{ entities: [{ key: door, component: light }] }",
                "'light' is not one of binary_sensor, sensor, switch, siren, button, event"
            ),
            ("{ entities: [{ key: door, component: sensor, on: [open] }] }", "is for a binary_sensor, not a sensor"),
            (
                "{ entities: [{ key: door, component: binary_sensor, payload_on: open }] }",
                "write the values that mean on as 'on: [open]'"
            ),
            (
                "{ entities: [{ key: relay, component: switch, command_on: RELAY=1, command_off: RELAY=0 }] }",
                "give its exact name in board:"
            ),
            (
                "{ entities: [{ board: 'si*', key: relay, component: switch, command_on: RELAY=1, command_off: RELAY=0 }] }",
                "give its exact name in board:"
            ),
            (
                "{ entities: [{ board: nowhere, key: relay, component: button, press: RESET }] }",
                "no board named 'nowhere'"
            ),
            (
                "{ entities: [{ board: siren, key: strobe, component: switch, command_on: STROBE=1, command_off: STROBE=0 }] }",
                "'STROBE=1' is not in the commands allow-list of board 'siren'"
            ),
            (
                "{ entities: [{ board: siren, key: reset, component: button }] }",
                "homeassistant.entities[0].press: is required"
            ),
            (
                "{ entities: [{ key: door, component: binary_sensor, icon: door }] }",
                "'door' is not an icon: write mdi:NAME"
            ),
            (
                "{ entities: [{ key: door, component: sensor, state_class: sometimes }] }",
                "'sometimes' is not one of measurement, total, total_increasing"
            ),
            ("{ colour: blue }", "homeassistant.colour: unknown key"),
            ("{ entities: [{ board: front-door, key: bell, component: event }] }", "an event needs its event_types"),
            ("{ entities: [{ key: bell, component: event, event_types: [] }] }", "an event needs its event_types"),
            (
                "{ entities: [{ key: door, component: binary_sensor, entity_category: config }] }",
                "config is for an entity that sets something"
            ),
            ("{ entities: [{ board: frontdoor, key: door, component: binary_sensor }] }", "no board named 'frontdoor'"),
            ("{ entities: [{ key: status, component: sensor }] }", "write key: _status")
        ]
        for (section, expected) in cases {
            let message = error(Self.yaml(homeassistant: section)) ?? "no error"
            #expect(message.contains(expected), "\(section): \(message)")
            #expect(message.contains("test.yaml:"), "\(section): \(message)")
        }
        // The alarm's own siren lines are the alarm's.
        let alarmLines = error(
            Self.yaml(
                homeassistant:
                    "{ entities: [{ board: siren, key: siren, component: siren, command_on: SIREN=ON, command_off: SIREN=OFF }] }",
                alarm: Self.alarm))
        #expect(alarmLines?.contains("are the alarm's siren lines on board 'siren'") == true, "\(alarmLines ?? "")")
        // `state` would read the entities' states as a board's topics.
        let reserved = error(Self.yaml(boards: "  - { name: state, match: { path: /dev/ttyUSB9 }, protocol: kv }"))
        #expect(reserved?.contains("a board may not be named 'state' with a homeassistant: section") == true)
        #expect(
            error(
                Self.yaml(boards: "  - { name: state, match: { path: /dev/ttyUSB9 }, protocol: kv }")
                    .replacingOccurrences(of: "homeassistant: {}", with: "")) == nil)
    }

    // MARK: - Which keys become which entity

    @Test func theCommonKeysOfEveryProtocolMapAndOthersAreNotAnnounced() throws {
        let catalog = try catalog(Self.yaml())
        let kv = try subtopics(
            catalog, board: "front-door",
            line: "door=open;motion=1;smoke=0;temperature=21.5;battery=87;rssi=-60;mood=fine")
        let kinds = try kv.map { key in
            try catalog.entity(board(catalog, "front-door"), key: key).map {
                "\($0.component.rawValue)/\($0.fields["device_class"]?.stringValue ?? "-")"
            }
        }
        #expect(
            kinds == [
                "binary_sensor/door", "binary_sensor/motion", "binary_sensor/smoke", "sensor/temperature",
                "sensor/battery",
                "sensor/signal_strength", nil
            ])
        // JSON: nested keys map by their last level.
        let json = try subtopics(
            catalog, board: "climate", line: #"{"hall":{"temperature":20.5,"humidity":40},"fw":"1.2"}"#)
        #expect(Set(json) == ["hall/temperature", "hall/humidity", "fw"])
        let climate = try board(catalog, "climate")
        #expect(catalog.entity(climate, key: "hall/temperature")?.fields["unit_of_measurement"] == "°C")
        #expect(catalog.entity(climate, key: "hall/humidity")?.fields["device_class"] == "humidity")
        #expect(catalog.entity(climate, key: "fw") == nil)
        // MySensors: by type, the node's battery by its internal message.
        let sensors = try board(catalog, "sensors")
        let temperature = try #require(try subtopics(catalog, board: "sensors", line: "12;3;1;0;0;19.5").first)
        #expect(temperature == "mysensors-out/12/3/1/0/0")
        let entity = try #require(catalog.entity(sensors, key: temperature))
        #expect(
            entity.fields["device_class"] == "temperature" && entity.fields["name"] == "Node 12 child 3 temperature")
        let battery = try #require(try subtopics(catalog, board: "sensors", line: "12;255;3;0;0;88").first)
        #expect(catalog.entity(sensors, key: battery)?.fields["device_class"] == "battery")
        #expect(catalog.entity(sensors, key: "mysensors-out/12/3/1/0/2") == nil)
        // Influx: one entity per field.
        let influx = try subtopics(
            catalog, board: "weather", line: "weather,station=roof temperature=4.5,pressure=1013.2")
        let weather = try board(catalog, "weather")
        #expect(influx.allSatisfy { catalog.entity(weather, key: $0)?.component == .sensor }, "\(influx)")
    }

    @Test func theConfigsRulesComeFirstAndCanIgnoreOrRename() throws {
        let catalog = try catalog(
            Self.yaml(
                homeassistant: """
                    { entities: [
                        { board: front-door, key: battery, ignore: true },
                        { board: 'clim*', key: '*/co2level', component: sensor, device_class: carbon_dioxide, unit: ppm, name: CO₂ },
                        { key: door, component: binary_sensor, device_class: garage_door, on: [up], off: [down] },
                        { board: siren, key: relay, component: switch, command_on: RELAY=1, command_off: RELAY=0 },
                        { board: siren, key: reset, component: button, press: RESET, entity_category: config },
                        { board: front-door, key: bell, component: event, event_types: [ring] }
                    ] }
                    """))
        let door = try board(catalog, "front-door")
        #expect(catalog.entity(door, key: "battery") == nil)
        #expect(catalog.entity(door, key: "door")?.fields["device_class"] == "garage_door")
        #expect(
            catalog.entity(door, key: "door")?.fields["value_template"]
                == "{% if value in ['up'] %}ON{% elif value in ['down'] %}OFF{% else %}None{% endif %}")
        let co2 = try #require(catalog.entity(try board(catalog, "climate"), key: "hall/co2level"))
        #expect(co2.fields["name"] == "CO₂" && co2.fields["unit_of_measurement"] == "ppm")
        let siren = try board(catalog, "siren")
        // Switches, sirens and buttons the config names exactly are announced before any line.
        let declared = catalog.boardEntities(siren)
        let relay = try #require(declared.first { $0.key == "relay" })
        #expect(relay.component == .switch && relay.fields["command_topic"] == "wiregate/house-1/siren/set")
        #expect(relay.fields["payload_on"] == "RELAY=1" && relay.fields["payload_off"] == "RELAY=0")
        let reset = try #require(declared.first { $0.key == "reset" })
        #expect(
            reset.component == .button && reset.fields["payload_press"] == "RESET"
                && reset.fields["entity_category"] == "config")
        let bell = try #require(catalog.boardEntities(door).first { $0.key == "bell" })
        // An event reads its state topic, where the gateway publishes live presses only, not retained.
        #expect(
            bell.fields["state_topic"] == "wiregate/house-1/state/front-door/bell"
                && bell.fields["event_types"] == ["ring"])
    }

    // MARK: - Payloads

    @Test func aBoardsEntityIsADeviceByIdentityAvailableWithGatewayAndBoard() throws {
        let catalog = try catalog(Self.yaml(alarm: Self.alarm))
        let door = try board(catalog, "front-door")
        let entity = try #require(catalog.entity(door, key: "door"))
        // The serial number names the device, not the name or the tty: a rename keeps it.
        #expect(entity.nodeID == "wiregate_house-1_serial_8573A1")
        #expect(entity.uniqueID == "wiregate_house-1_serial_8573A1:key_door")
        #expect(
            entity.configTopic(prefix: "homeassistant")
                == "homeassistant/binary_sensor/wiregate_house-1_serial_8573A1/key_door/config")
        let (topic, payload) = catalog.message(for: entity, device: catalog.device(of: door))
        #expect(topic == "homeassistant/binary_sensor/wiregate_house-1_serial_8573A1/key_door/config")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any])
        #expect(object["state_topic"] as? String == "wiregate/house-1/state/front-door/door")
        #expect(object["availability_mode"] as? String == "all")
        let availability = (object["availability"] as? [[String: String]])?.map { $0["topic"] ?? "" }
        #expect(availability == ["wiregate/house-1/status", "wiregate/house-1/front-door/status"])
        let device = try #require(object["device"] as? [String: Any])
        #expect(device["identifiers"] as? [String] == ["wiregate_house-1_serial_8573A1"])
        #expect(device["via_device"] as? String == "wiregate_house-1" && device["name"] as? String == "front-door")
        #expect((object["origin"] as? [String: String]) == ["name": "wiregate", "sw_version": "9.9"])
        // The alarm zone's open values decide on, so Home Assistant and the alarm agree.
        #expect(object["value_template"] as? String == "{{ 'ON' if value in ['ajar', 'open'] else 'OFF' }}")
        // The same config is the same bytes (Home Assistant skips a config it has).
        #expect(catalog.message(for: entity, device: catalog.device(of: door)).payload == payload)

        // Hello name and port path name the others; a fixed path falls back to the name.
        #expect(catalog.nodeID(of: try board(catalog, "siren")) == "wiregate_house-1_hello_siren-1")
        #expect(
            catalog.nodeID(of: try board(catalog, "climate")) == "wiregate_house-1_usb_path_1-1_2_"
                + DiscoveryCatalog.fnv("usb_path_1-1.2"))
        #expect(catalog.nodeID(of: try board(catalog, "sensors")) == "wiregate_house-1_board_sensors")
        // An adopted board named from its serial number is the same device once the config names it.
        let config = catalog.config
        var adopting = config
        adopting.discovery.adoptUnknown = true
        adopting.adoptTemplate = config.boards[0]
        let adopted = try #require(
            adopting.adoptedBoard(named: "8573A1", identity: BoardIdentity(source: .serial, value: "8573A1")))
        #expect(catalog.nodeID(of: adopted) == catalog.nodeID(of: door))
    }

    @Test func theGatewayHasItsDiagnosticsAndTheAlarmPanelAndTheSirensSound() throws {
        let catalog = try catalog(Self.yaml(alarm: Self.alarm))
        let entities = catalog.gatewayEntities()
        #expect(
            entities.map(\.objectID) == [
                "gateway_backlog_mqtt", "gateway_journal_bytes", "gateway_boards_online", "gateway_clock_synchronised",
                "gateway_events_dropped", "gateway_alarm"
            ])
        #expect(
            entities.dropLast().allSatisfy {
                $0.fields["state_topic"] == "wiregate/house-1/health" && $0.fields["entity_category"] == "diagnostic"
            })
        let panel = try #require(entities.last)
        #expect(panel.component == .alarmControlPanel)
        #expect(
            panel.fields["state_topic"] == "wiregate/house-1/alarm/state"
                && panel.fields["command_topic"] == "wiregate/house-1/alarm/set")
        // The code goes to the gateway, which checks it; Home Assistant only shows the keypad.
        #expect(
            panel.fields["code"] == "REMOTE_CODE" && panel.fields["code_arm_required"] == true
                && panel.fields["code_disarm_required"] == true)
        #expect(panel.fields["command_template"] == "{{ {'action': action, 'code': code} | tojson }}")
        // The alarm's siren: shown sounding while triggered, never switched from Home Assistant.
        let siren = try #require(
            catalog.boardEntities(try board(catalog, "siren")).first { $0.objectID == "board_alarm_siren" })
        #expect(siren.component == .binarySensor && siren.fields["command_topic"] == nil)
        #expect(siren.fields["state_topic"] == "wiregate/house-1/alarm/state")
        // Every board's connectivity, so its device appears before it says anything.
        let connected = try #require(catalog.boardEntities(try board(catalog, "climate")).first)
        #expect(
            connected.objectID == "board_connected"
                && connected.fields["state_topic"] == "wiregate/house-1/climate/status")
    }

    @Test func everyTopicAndIDIsOneHomeAssistantTakes() throws {
        let catalog = try catalog(Self.yaml(alarm: Self.alarm))
        let door = try board(catalog, "front-door")
        let hostile = [
            "a b", "dür", "x/y/z", "_status", "a+b", "..", "€€€", String(repeating: "k", count: 128), "a/b", "a_b"
        ]
        let pattern = try Regex("^[a-zA-Z0-9_-]+$")
        var topics: Set<String> = []
        for key in hostile {
            var rule = EntityRule(key: key, component: .sensor)
            rule.board = "front-door"
            var config = catalog.config
            config.homeAssistant?.rules = [rule]
            let custom = try #require(DiscoveryCatalog(config: config, version: "1"))
            let entity = try #require(custom.entity(door, key: key))
            #expect(
                entity.nodeID.wholeMatch(of: pattern) != nil && entity.objectID.wholeMatch(of: pattern) != nil, "\(key)"
            )
            topics.insert(entity.configTopic(prefix: "homeassistant"))
        }
        // Keys that differ only in what a slug drops still get topics of their own.
        #expect(topics.count == hostile.count)
        #expect(
            DiscoveryCatalog.slug("env/temperature") == "env_temperature_" + DiscoveryCatalog.fnv("env/temperature"))
        #expect(DiscoveryCatalog.slug("door") == "door")
        #expect(DiscoveryCatalog.slug("dür") != DiscoveryCatalog.slug("d_r"))
        #expect(DiscoveryCatalog.slug("a/b") != DiscoveryCatalog.slug("a_b"))
        // Unique ids cannot run together: board x's key y_key/door is not board x_key_y's door.
        #expect(
            DiscoveryEntity(component: .sensor, nodeID: "n_board_x", objectID: "key_y_key_door", fields: [:]).uniqueID
                != DiscoveryEntity(component: .sensor, nodeID: "n_board_x_key_y", objectID: "key_door", fields: [:])
                .uniqueID)
        // The entity ids Home Assistant makes of the object ids.
        #expect(DiscoveryCatalog.entitySlug("front-door_door") == "front_door_door")
        #expect(DiscoveryCatalog.entitySlug("A--b__c/") == "a_b_c")
    }

    @Test func deviceBasedDiscoveryIsOneConfigPerDevice() throws {
        let catalog = try catalog(Self.yaml(homeassistant: "{ discovery: device }"))
        let door = try board(catalog, "front-door")
        var plan = DiscoveryPlan(catalog: catalog, records: [], boards: catalog.config.boards)
        plan.add(board: door, key: "door")
        let messages = plan.configMessages()
        #expect(messages.map(\.topic).first == "homeassistant/device/wiregate_house-1/config")
        let doorMessage = try #require(
            messages.first { $0.topic == "homeassistant/device/wiregate_house-1_serial_8573A1/config" })
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(doorMessage.payload.utf8)) as? [String: Any])
        let components = try #require(object["components"] as? [String: [String: Any]])
        #expect(Set(components.keys) == ["board_connected", "key_door"])
        #expect(components["key_door"]?["platform"] as? String == "binary_sensor")
        #expect((object["device"] as? [String: Any])?["identifiers"] as? [String] == ["wiregate_house-1_serial_8573A1"])
    }

    // MARK: - The plan: what a start clears

    func records(_ plan: inout DiscoveryPlan) -> [DiscoveryRecord] { plan.takeUnrecorded() }

    @Test func aStartClearsWhatItNoLongerProducesAndKeepsTheRest() throws {
        let before = try catalog(
            Self.yaml(
                homeassistant: "{ entities: [{ board: siren, key: reset, component: button, press: RESET }] }",
                alarm: Self.alarm))
        var first = DiscoveryPlan(catalog: before, records: [], boards: before.config.boards)
        first.add(board: try board(before, "front-door"), key: "door")
        first.add(board: try board(before, "front-door"), key: "battery")
        first.add(board: try board(before, "climate"), key: "hall/temperature")
        let recorded = records(&first)
        #expect(first.stale.isEmpty && recorded.count == first.entities.count)
        #expect(records(&first).isEmpty)

        // Next start: the climate board is gone, battery is ignored, the button and the alarm are removed.
        let yaml = Self.yaml(homeassistant: "{ entities: [{ board: front-door, key: battery, ignore: true }] }")
            .replacingOccurrences(of: #"  - { name: climate, match: { usb_path: "1-1.2" }, protocol: json }"#, with: "")
        let after = try catalog(yaml)
        var second = DiscoveryPlan(catalog: after, records: recorded, boards: after.config.boards)
        let staleObjects = Set(second.stale.map { "\($0.board ?? "gateway"):\($0.object)" })
        #expect(
            staleObjects == [
                "front-door:key_battery", "climate:board_connected",
                "climate:key_" + DiscoveryCatalog.slug("hall/temperature"), "siren:key_reset",
                "siren:board_alarm_siren",
                "gateway:gateway_alarm"
            ])
        // Each cleared by an empty retained config on its own topic, and a key's retained state with it.
        #expect(second.clearingMessages().allSatisfy { $0.payload.isEmpty })
        #expect(
            Set(second.clearingMessages().map(\.topic))
                == Set(second.stale.map(\.topic)).union([
                    "wiregate/house-1/state/front-door/battery", "wiregate/house-1/state/climate/hall/temperature",
                    "wiregate/house-1/state/siren/reset"
                ]))
        // What it still produces is kept, the door among it, before the board says anything.
        #expect(second.entities.contains { $0.key == "door" && $0.board == "front-door" })
        #expect(records(&second).isEmpty)
    }

    @Test func aRenamedBoardKeepsItsEntitiesAndAnUnpluggedAdoptedOneStays() throws {
        let before = try catalog(Self.yaml())
        var first = DiscoveryPlan(catalog: before, records: [], boards: before.config.boards)
        first.add(board: try board(before, "front-door"), key: "door")
        let recorded = records(&first)
        // Renamed in the config, same serial number: same topics, same unique ids, nothing cleared.
        let after = try catalog(Self.yaml().replacingOccurrences(of: "name: front-door", with: "name: entrance"))
        let second = DiscoveryPlan(catalog: after, records: recorded, boards: after.config.boards)
        #expect(second.stale.isEmpty)
        let door = try #require(second.entities.first { $0.key == "door" })
        #expect(door.board == "entrance" && door.uniqueID == "wiregate_house-1_serial_8573A1:key_door")
        #expect(door.fields["state_topic"] == "wiregate/house-1/state/entrance/door")

        // An adopted board's entities stay while it is unplugged at a start, and go once adopting is off.
        let adoptYAML = Self.yaml() + "\nunknown_boards: adopt\ndefaults: { protocol: kv }\n"
        let adopting = try catalog(adoptYAML)
        let adopted = try #require(
            adopting.config.adoptedBoard(named: "C0FFEE", identity: BoardIdentity(source: .serial, value: "C0FFEE")))
        var third = DiscoveryPlan(catalog: adopting, records: [], boards: adopting.config.boards)
        third.add(board: adopted, key: "motion")
        let adoptedRecords = records(&third)
        #expect(adoptedRecords.contains { $0.identity == "serial:C0FFEE" })
        let unplugged = DiscoveryPlan(catalog: adopting, records: adoptedRecords, boards: adopting.config.boards)
        #expect(unplugged.stale.isEmpty && unplugged.entities.contains { $0.board == "C0FFEE" && $0.key == "motion" })
        let notAdopting = DiscoveryPlan(catalog: before, records: adoptedRecords, boards: before.config.boards)
        #expect(Set(notAdopting.stale.compactMap(\.board)) == ["C0FFEE"])
        // Still away once its grace is over: retired, its entities cleared; one that came back stays.
        var graced = DiscoveryPlan(catalog: adopting, records: adoptedRecords, boards: adopting.config.boards)
        #expect(graced.retireAbsentAdopted(present: ["C0FFEE"]).isEmpty && graced.stale.isEmpty)
        var away = DiscoveryPlan(catalog: adopting, records: adoptedRecords, boards: adopting.config.boards)
        #expect(away.retireAbsentAdopted(present: []) == ["C0FFEE"])
        #expect(Set(away.stale.map(\.topic)) == Set(adoptedRecords.filter { $0.board == "C0FFEE" }.map(\.topic)))
        #expect(!away.entities.contains { $0.board == "C0FFEE" } && !away.knows(board: "C0FFEE"))
        #expect(away.clearingMessages().contains { $0.topic == "wiregate/house-1/state/C0FFEE/motion" })
    }

    @Test func aChangeOfModeClearsTheOldTopics() throws {
        let component = try catalog(Self.yaml())
        var first = DiscoveryPlan(catalog: component, records: [], boards: component.config.boards)
        first.add(board: try board(component, "front-door"), key: "door")
        let recorded = records(&first)
        let device = try catalog(Self.yaml(homeassistant: "{ discovery: device }"))
        var second = DiscoveryPlan(catalog: device, records: recorded, boards: device.config.boards)
        // Every per-component config goes (empty), then each device's one config comes.
        #expect(second.stale.count == recorded.count)
        #expect(
            second.clearingMessages().count == recorded.count
                && second.clearingMessages().allSatisfy { $0.payload.isEmpty })
        #expect(second.configMessages().allSatisfy { $0.topic.hasPrefix("homeassistant/device/") })
        let deviceRecords = records(&second)
        #expect(deviceRecords.allSatisfy { $0.mode == "device" })
        // And back: each device's one config goes, though its entities are still produced.
        let third = DiscoveryPlan(catalog: component, records: deviceRecords, boards: component.config.boards)
        #expect(
            Set(third.clearingMessages().map(\.topic)).isSuperset(of: [
                "homeassistant/device/wiregate_house-1_serial_8573A1/config",
                "homeassistant/device/wiregate_house-1/config"
            ]))
    }
}
