import CMosquitto
import Foundation
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// Discovery end to end without Home Assistant (a real mosquitto and pseudo-terminals): what is
/// published and retained, Home Assistant's birth answered after its delay, the ghosts of a
/// removed board cleared at the next start, and no command reaching a board past its allow-list.
@Suite(.serialized) struct HomeAssistantDiscoveryE2ETests {
    let broker: MosquittoBroker
    let hall: SimulatedBoard
    let garage: SimulatedBoard
    let state: String

    init() throws {
        broker = try MosquittoBroker()
        hall = try SimulatedBoard()
        garage = try SimulatedBoard()
        state = temporaryPath("state")
    }

    func yaml(withGarage: Bool = true, delay: String = "1s") -> String {
        GatewayHarness.yaml(
            port: broker.port, gatewayID: "house",
            boards: """
                  - { name: hall, match: { path: \(hall.path) }, protocol: kv, settle: 0s, commands: ["RELAY=1", "RELAY=0", "LED=*"] }
                \(withGarage ? "  - { name: garage, match: { path: \(garage.path) }, protocol: kv, settle: 0s }" : "")
                """, stateDirectory: state,
            sections: """
                homeassistant:
                  republish_delay: \(delay)
                  entities:
                    - { board: hall, key: relay, component: switch, command_on: RELAY=1, command_off: RELAY=0 }
                """)
    }

    func start(_ yaml: String, boards: [String]) async throws -> GatewayHarness {
        let harness = try GatewayHarness(yaml: yaml)
        let gateway = harness.gateway
        #expect(await eventually { gateway.mqtt.isConnected && boards.allSatisfy(gateway.directory.isOnline) })
        return harness
    }

    func configs(_ messages: [Subscriber.Message]) -> [Subscriber.Message] {
        messages.filter { $0.topic.hasPrefix("homeassistant/") && $0.topic.hasSuffix("/config") }
    }

    @Test func configsAndStatesAreRetainedAndEveryTopicIsOneTheBrokerTakes() async throws {
        let harness = try await start(yaml(), boards: ["hall", "garage"])
        _ = hall.send("door=open;temperature=19.5;mood=fine")
        let all = try Subscriber(port: broker.port, filter: "#")
        #expect(
            await all.waitAsync(timeout: .seconds(20)) { messages in
                messages.contains { $0.topic == "wiregate/house/state/hall/door" && $0.payload == "open" }
                    && messages.contains { $0.topic.hasSuffix("/key_temperature/config") }
            })
        await harness.stop()
        // A subscriber that comes later gets them all retained: configs, then the states.
        let late = try Subscriber(port: broker.port, filter: "#")
        #expect(
            await late.waitAsync(timeout: .seconds(10)) {
                $0.contains { $0.topic == "wiregate/house/state/hall/temperature" }
            })
        let topics = Set(configs(late.messages).map(\.topic))
        let node = "wiregate_house_board_hall"
        #expect(
            topics.isSuperset(of: [
                "homeassistant/binary_sensor/\(node)/key_door/config",
                "homeassistant/sensor/\(node)/key_temperature/config",
                "homeassistant/switch/\(node)/key_relay/config",
                "homeassistant/binary_sensor/\(node)/board_connected/config",
                "homeassistant/binary_sensor/wiregate_house_board_garage/board_connected/config",
                "homeassistant/sensor/wiregate_house/gateway_journal_bytes/config"
            ]), "\(topics.sorted())")
        // A key no rule maps is not announced.
        #expect(!topics.contains { $0.contains("mood") })
        #expect(!late.messages.contains { $0.topic.contains("state/hall/mood") })
        // libmosquitto's own validator takes every topic, and every config is JSON with a unique id.
        for message in late.messages
        where message.topic.hasPrefix("homeassistant/") || message.topic.contains("/state/") {
            #expect(mosquitto_pub_topic_check(message.topic) == MOSQ_ERR_SUCCESS.rawValue, "\(message.topic)")
        }
        for message in configs(late.messages) {
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(message.payload.utf8)) as? [String: Any])
            #expect((object["unique_id"] as? String)?.isEmpty == false, "\(message.topic)")
            #expect((object["device"] as? [String: Any])?["identifiers"] != nil, "\(message.topic)")
        }

        // `wiregate devices` lists per board what it announces: the config's, and the keys the journal recorded.
        let file = temporaryPath("wiregate", suffix: ".yaml")
        try yaml().write(toFile: file, atomically: true, encoding: .utf8)
        let listed = try runWiregate(["devices", "--config", file])
        #expect(listed.status == 0, "\(listed.output)")
        for line in [
            "Home Assistant (discovery on homeassistant/), per board:", "binary_sensor.hall_door  \"Door\"  key door",
            "sensor.hall_temperature  \"Temperature\"  key temperature", "switch.hall_relay  \"Relay\"  key relay",
            "binary_sensor.garage_connected  \"Connected\""
        ] {
            #expect(listed.output.contains(line), "\(line) in \(listed.output)")
        }
    }

    @Test func homeAssistantsBirthIsAnsweredAfterItsDelayWithConfigsThenStates() async throws {
        let harness = try await start(yaml(delay: "1500ms"), boards: ["hall", "garage"])
        _ = hall.send("door=closed")
        let watcher = try Subscriber(port: broker.port, filter: "#")
        #expect(
            await watcher.waitAsync(timeout: .seconds(20)) {
                $0.contains { $0.topic == "wiregate/house/state/hall/door" }
            })
        try await Task.sleep(for: .milliseconds(500))
        let before = watcher.messages.count
        let announced = configs(Array(watcher.messages.prefix(before))).count
        let born = ContinuousClock.now
        try await publish(port: broker.port, topic: "homeassistant/status", payload: "online")
        #expect(
            await watcher.waitAsync(timeout: .seconds(10)) { messages in
                let again = Array(messages.dropFirst(before))
                return self.configs(again).count >= announced && again.contains { $0.topic.contains("/state/") }
            })
        let answered = ContinuousClock.now - born
        let again = Array(watcher.messages.dropFirst(before))
        // Everything again: every config, then the states (a config first, so the entity exists).
        #expect(configs(again).count == announced, "\(again)")
        let firstState = try #require(again.firstIndex { $0.topic.hasPrefix("wiregate/house/state/") })
        let lastConfig = try #require(again.lastIndex { $0.topic.hasPrefix("homeassistant/") })
        #expect(lastConfig < firstState)
        #expect(answered < .seconds(5), "\(answered)")
        // `offline` (its last will) and other payloads are not births.
        let quiet = watcher.messages.count
        try await publish(port: broker.port, topic: "homeassistant/status", payload: "offline")
        try await Task.sleep(for: .seconds(2))
        #expect(configs(Array(watcher.messages.dropFirst(quiet))).isEmpty)
        await harness.stop()
    }

    @Test func aRemovedBoardsConfigsAreClearedOnceAtTheNextStart() async throws {
        var harness = try await start(yaml(), boards: ["hall", "garage"])
        _ = garage.send("door=closed;temperature=4")
        let first = try Subscriber(port: broker.port, filter: "homeassistant/#")
        #expect(
            await first.waitAsync(timeout: .seconds(20)) { $0.contains { $0.topic.contains("garage/key_temperature") } }
        )
        await harness.stop()

        // The garage is no longer in the config: each of its configs gets an empty retained message.
        let clearing = try Subscriber(port: broker.port, filter: "homeassistant/#")
        _ = await clearing.waitAsync(timeout: .seconds(5)) { $0.contains { $0.topic.contains("garage") } }
        let retainedBefore = clearing.messages.count
        harness = try await start(yaml(withGarage: false), boards: ["hall"])
        let garageTopics = [
            "homeassistant/binary_sensor/wiregate_house_board_garage/board_connected/config",
            "homeassistant/binary_sensor/wiregate_house_board_garage/key_door/config",
            "homeassistant/sensor/wiregate_house_board_garage/key_temperature/config"
        ]
        @Sendable func cleared(_ messages: [Subscriber.Message], times: Int) -> Bool {
            garageTopics.allSatisfy { topic in
                messages.dropFirst(retainedBefore).filter { $0.topic == topic && $0.payload.isEmpty }.count >= times
            }
        }
        #expect(await clearing.waitAsync(timeout: .seconds(20)) { cleared($0, times: 1) }, "\(clearing.messages)")
        // Home Assistant had not said online on this connection: it may have been down, and a
        // clearing it did not see would leave its entity. Its birth brings the clearing again,
        // which it sees: only then are the records forgotten.
        let state = self.state
        let recordedGarage = { @Sendable in
            ((try? Journal.discoveryRecords(stateDirectory: state)) ?? []).contains { $0.board == "garage" }
        }
        // The whole burst is out (the hall's configs come after the clearings), and a moment more:
        // the records are still there, since Home Assistant has not said online.
        #expect(
            await clearing.waitAsync(timeout: .seconds(20)) { messages in
                messages.dropFirst(retainedBefore).contains { $0.topic.hasSuffix("board_hall/board_connected/config") }
            })
        try await Task.sleep(for: .milliseconds(500))
        #expect(recordedGarage())
        try await publish(port: broker.port, topic: "homeassistant/status", payload: "online")
        #expect(await clearing.waitAsync(timeout: .seconds(20)) { cleared($0, times: 2) }, "\(clearing.messages)")
        #expect(await eventually { !recordedGarage() })
        await harness.stop()
        // The broker keeps none of them, and the next start clears nothing again (the journal forgot them).
        let after = try Subscriber(port: broker.port, filter: "homeassistant/#")
        _ = await after.waitAsync(timeout: .seconds(3)) { $0.contains { $0.topic.contains("board_hall") } }
        #expect(!after.messages.contains { $0.topic.contains("garage") })
        let third = try Subscriber(port: broker.port, filter: "homeassistant/#")
        harness = try await start(yaml(withGarage: false), boards: ["hall"])
        // Its whole first publish is there (the hall's configs, retained and then published again)...
        #expect(
            await third.waitAsync(timeout: .seconds(20)) { messages in
                messages.filter { $0.topic.hasSuffix("board_hall/board_connected/config") }.count >= 2
            })
        // ...and not one garage topic in it.
        #expect(!third.messages.contains { $0.topic.contains("garage") })
        await harness.stop()
    }

    @Test func noCommandFromHomeAssistantBypassesTheAllowList() async throws {
        let harness = try await start(yaml(), boards: ["hall", "garage"])
        // The switch's own lines reach the board.
        try await publish(port: broker.port, topic: "wiregate/house/hall/set", payload: "RELAY=1")
        let lines = await hall.receivedLines(within: .seconds(10)) { $0.contains("RELAY=1") }
        #expect(lines == ["RELAY=1"])
        // What the allow-list does not hold does not, on the switch's topic or any other Home
        // Assistant could be told to use; a retained command neither.
        for (topic, payload) in [
            ("wiregate/house/hall/set", "RELAY=2"), ("wiregate/house/hall/set", "RELAY=1\nRESET"),
            ("wiregate/house/hall/set", "LED=1;RELAY=0"), ("wiregate/house/garage/set", "RELAY=1"),
            ("wiregate/house/state/hall/relay", "RELAY=0"), ("homeassistant/switch/x/config", "RELAY=0")
        ] {
            try await publish(port: broker.port, topic: topic, payload: payload)
        }
        try await publish(port: broker.port, topic: "wiregate/house/hall/set", payload: "RELAY=0", retain: true)
        try await Task.sleep(for: .seconds(2))
        #expect(hall.receivedLines().isEmpty)
        #expect(garage.receivedLines().isEmpty)
        #expect(harness.gateway.router.counters.refused["hall"] == 3 && harness.gateway.router.counters.retained == 1)
        try await publish(port: broker.port, topic: "wiregate/house/hall/set", payload: "", retain: true)
        await harness.stop()
    }
}
