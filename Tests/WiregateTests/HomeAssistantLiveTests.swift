import Foundation
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// Against a real Home Assistant 2024.3.3 (`scripts/homeassistant-venv.sh`): what it makes of
/// wiregate's discovery, not what we think it accepts. The README's test command runs it as a
/// step of its own, after the suite (`WIREGATE_HOMEASSISTANT_TESTS=1`): Home Assistant's start
/// is a burst of Python on two cores that the suite's timing-bound tests would share.
@Suite(
    .serialized,
    .enabled(
        if: HomeAssistantServer.isInstalled
            && ProcessInfo.processInfo.environment["WIREGATE_HOMEASSISTANT_TESTS"] == "1",
        "scripts/homeassistant-venv.sh, then WIREGATE_HOMEASSISTANT_TESTS=1 swift test --filter HomeAssistantLiveTests")
)
struct HomeAssistantLiveTests {
    let broker: MosquittoBroker
    let door: SimulatedBoard
    let siren: SimulatedBoard
    let garage: SimulatedBoard
    let state: String

    init() throws {
        broker = try MosquittoBroker()
        door = try SimulatedBoard()
        siren = try SimulatedBoard()
        garage = try SimulatedBoard()
        state = temporaryPath("state")
    }

    func yaml(withGarage: Bool = true) throws -> String {
        let hash = try yescryptHash(of: "1234")
        return GatewayHarness.yaml(
            port: broker.port, gatewayID: "house",
            boards: """
                  - { name: front-door, match: { path: \(door.path) }, protocol: kv, settle: 0s, classes: { door: critical } }
                  - { name: siren, match: { path: \(siren.path) }, protocol: kv, settle: 0s, commands: ["SIREN=ON", "SIREN=OFF", "CHIME=1", "CHIME=0"] }
                \(withGarage ? "  - { name: garage, match: { path: \(garage.path) }, protocol: kv, settle: 0s }" : "")
                """, stateDirectory: state,
            sections: """
                alarm:
                  zones: [{ name: front, board: front-door, key: door, open: [open], type: delayed }]
                  sirens: [{ board: siren, on: SIREN=ON, off: SIREN=OFF }]
                  codes: [{ name: owner, hash: '\(hash)' }]
                  exit_delay: 1s
                  entry_delay: 1s
                  allow_disarm_without_tls: true
                homeassistant:
                  republish_delay: 500ms
                  entities:
                    - { board: siren, key: chime, component: siren, command_on: CHIME=1, command_off: CHIME=0 }
                """)
    }

    func states(_ home: HomeAssistantServer, _ ids: [String]) async -> [String: String] {
        let all = await home.states() ?? []
        return Dictionary(
            uniqueKeysWithValues: all.filter { ids.contains($0.entityID) }.map { ($0.entityID, $0.state) })
    }

    @Test func boardsAppearFollowTheGatewayAndTheAlarmAndSirenWorkFromHomeAssistant() async throws {
        let home = try HomeAssistantServer(mqttPort: broker.port)
        let started = ContinuousClock.now
        #expect(try await home.waitUntilOnline(), "Home Assistant's MQTT did not come up; see \(home.directory)")
        var harness = try GatewayHarness(yaml: try yaml())
        let gateway = harness.gateway
        #expect(await eventually { ["front-door", "siren", "garage"].allSatisfy(gateway.directory.isOnline) })
        _ = door.send("door=closed;motion=0;smoke=0;temperature=21.5;battery=87")
        _ = garage.send("door=closed")

        // Boards appear as devices via the gateway, their keys as entities of the right domains and classes.
        let expected: [String: (state: String, deviceClass: String?)] = [
            "binary_sensor.front_door_door": ("off", "door"), "binary_sensor.front_door_motion": ("off", "motion"),
            "binary_sensor.front_door_smoke": ("off", "smoke"),
            "sensor.front_door_temperature": ("21.5", "temperature"),
            "sensor.front_door_battery": ("87", "battery"), "binary_sensor.garage_door": ("off", "door"),
            "alarm_control_panel.house_alarm": ("disarmed", nil), "siren.siren_chime": ("unknown", nil),
            "binary_sensor.siren_alarm_siren": ("off", "sound")
        ]
        let appeared = await eventually(timeout: .seconds(60)) {
            let all = await home.states() ?? []
            return expected.allSatisfy { id, want in
                all.contains {
                    $0.entityID == id && $0.state == want.state && $0.attributes["device_class"] == want.deviceClass
                }
            }
        }
        let seen = await home.states() ?? []
        #expect(appeared, "\(seen.filter { expected[$0.entityID] != nil || $0.entityID.contains("front_door") })")
        #expect(await home.state("sensor.front_door_temperature")?.attributes["unit_of_measurement"] == "°C")
        let registry = try #require(await home.registry())
        let gatewayDevice = try #require(registry.devices.first { $0.identifiers == ["wiregate_house"] })
        let doorDevice = try #require(registry.devices.first { $0.name == "front-door" })
        #expect(doorDevice.viaDeviceID == gatewayDevice.id)
        let doorEntities = Set(registry.entities.filter { $0.deviceID == doorDevice.id }.map(\.entityID))
        #expect(
            doorEntities.isSuperset(of: [
                "binary_sensor.front_door_door", "sensor.front_door_battery", "binary_sensor.front_door_connected"
            ]))
        #expect(
            registry.entities.contains {
                $0.entityID == "sensor.house_journal_bytes" && $0.deviceID == gatewayDevice.id
                    && $0.entityCategory == "diagnostic"
            })
        print("Home Assistant: entities up \(ContinuousClock.now - started) after its start")

        // A door=open line makes the binary sensor on.
        _ = door.send("door=open")
        #expect(await eventually { await home.state("binary_sensor.front_door_door")?.state == "on" })
        _ = door.send("door=closed")
        #expect(await eventually { await home.state("binary_sensor.front_door_door")?.state == "off" })

        // The gateway stops: its entities unavailable; it starts: available again, with their states.
        await harness.stop()
        #expect(await eventually { await home.state("binary_sensor.front_door_door")?.state == "unavailable" })
        // The gateway's own status goes after its boards' (the MQTT sink stops after them): a moment later.
        #expect(await eventually { await home.state("sensor.house_journal_bytes")?.state == "unavailable" })
        harness = try GatewayHarness(yaml: try yaml())
        #expect(await eventually { await home.state("binary_sensor.front_door_door")?.state == "off" })
        #expect(await eventually { await home.state("sensor.front_door_temperature")?.state == "21.5" })

        // Home Assistant restarts: its birth gets the configs and the states published again
        // (seen by a subscriber that was there before: retained copies alone would not reach it).
        let configs = try Subscriber(port: broker.port, filter: "homeassistant/binary_sensor/+/key_door/config")
        #expect(
            await configs.waitAsync(timeout: .seconds(10)) { $0.contains { $0.topic.hasSuffix("/key_door/config") } })
        let retainedCount = configs.messages.filter { $0.topic.hasSuffix("/key_door/config") }.count
        await home.stop()
        try home.start()
        #expect(try await home.waitUntilOnline())
        #expect(
            await configs.waitAsync(timeout: .seconds(20)) {
                $0.filter { $0.topic.hasSuffix("/key_door/config") }.count > retainedCount
            })
        #expect(await eventually { await home.state("binary_sensor.front_door_door")?.state == "off" })

        // siren.turn_on reaches the siren board's pty as its allowed line (while disarmed).
        #expect(await home.call("siren.turn_on", data: ["entity_id": "siren.siren_chime"]) == 200)
        let written = await siren.receivedLines(within: .seconds(20)) { $0.contains("CHIME=1") }
        #expect(written.contains("CHIME=1"), "\(written)")

        // Arming through the alarm panel arms the gateway's alarm; opening the door triggers it.
        let alarm = try #require(harness.gateway.alarm)
        #expect(
            await home.call(
                "alarm_control_panel.alarm_arm_away", data: ["entity_id": "alarm_control_panel.house_alarm"]) == 200)
        #expect(await eventually { alarm.status.state == .armedAway })
        #expect(await eventually { await home.state("alarm_control_panel.house_alarm")?.state == "armed_away" })
        _ = door.send("door=open")
        #expect(await eventually { alarm.status.state == .triggered })
        #expect(await eventually { await home.state("alarm_control_panel.house_alarm")?.state == "triggered" })
        #expect(await eventually { await home.state("binary_sensor.siren_alarm_siren")?.state == "on" })
        // A wrong code does not disarm (the gateway checks it); the right one does.
        await home.call(
            "alarm_control_panel.alarm_disarm", data: ["entity_id": "alarm_control_panel.house_alarm", "code": "0000"])
        try await Task.sleep(for: .seconds(1))
        #expect(alarm.status.state == .triggered)
        await home.call(
            "alarm_control_panel.alarm_disarm", data: ["entity_id": "alarm_control_panel.house_alarm", "code": "1234"])
        #expect(await eventually { alarm.status.state == .disarmed })
        #expect(await eventually { await home.state("alarm_control_panel.house_alarm")?.state == "disarmed" })

        // A board removed from the config leaves no entity behind once the gateway restarts.
        await harness.stop()
        harness = try GatewayHarness(yaml: try yaml(withGarage: false))
        #expect(await eventually { await home.state("binary_sensor.garage_door") == nil })
        var garageGone = false
        for _ in 0..<60 where !garageGone {
            // Each look starts a Python process: every half second, not every 20 ms.
            garageGone = await home.registry()?.devices.contains { $0.name == "garage" } == false
            if !garageGone { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(garageGone)
        #expect(await eventually { await home.state("binary_sensor.front_door_door")?.state == "on" })
        print("Home Assistant: the whole test took \(ContinuousClock.now - started)")
        await harness.stop()
        await home.stop()
    }
}
