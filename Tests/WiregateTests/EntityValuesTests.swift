import Foundation
import Logging
import Testing
import Wiregate
import WiregateCore

/// The last values Home Assistant is told of: bounded whatever a board sends.
@Suite struct EntityValuesTests {
    func values(rules: String) throws -> EntityValues {
        let config = try GatewayConfig.parse(
            yaml: """
                gateway: { id: house, state_dir: /tmp/unused }
                mqtt: { host: 127.0.0.1 }
                boards: [{ name: hall, match: { path: /dev/null }, protocol: json }]
                homeassistant: { entities: [\(rules)] }
                """, file: "test.yaml")
        return EntityValues(
            catalog: try #require(DiscoveryCatalog(config: config, version: "1")), logger: Logger(label: "test"))
    }

    func event(_ key: String, _ value: String) -> Event {
        Event(
            board: "hall", topic: "wiregate/house/hall/\(key)", subtopic: key, payload: value, eventClass: .telemetry,
            receivedAt: Date())
    }

    @Test func aBoardSendingEverNewKeysGetsAtMostItsBoundAnnounced() throws {
        let values = try values(rules: "{ key: 'k*', component: sensor }")
        // 300 keys: past the bound, and light (this runs on the shared pool the suite's gateways use).
        for batch in 0..<5 {
            values.observe((0..<60).map { event("k\(batch)-\($0)", "1") })
        }
        let (fresh, published, _) = values.take(all: true)
        #expect(fresh.count == EntityValues.maxEntitiesPerBoard)
        // The first ones seen, in their order: the same entities at every run of the gateway.
        let sent = (0..<5).flatMap { batch in (0..<60).map { "k\(batch)-\($0)" } }
        #expect(fresh.map(\.key) == Array(sent.prefix(EntityValues.maxEntitiesPerBoard)))
        #expect(published.count == EntityValues.maxEntitiesPerBoard)
        // A key past the bound keeps no value, however often it comes.
        values.observe([event("k4-59", "2")])
        #expect(values.value(board: "hall", key: "k4-59") == nil)
    }

    @Test func unmappedKeysCostNoAnnouncementAndAMappedOneStillComesAfterThem() throws {
        // Matched by a glob, as the MySensors defaults are: still announced past the unmapped cap.
        let values = try values(rules: "{ key: 'do*r', component: binary_sensor }")
        values.observe((0..<(EntityValues.maxUnmappedPerBoard + 100)).map { event("noise\($0)", "x") })
        #expect(values.take(all: true).fresh.isEmpty)
        values.observe([event("door", "open"), event("door", "")])
        let (fresh, published, dirty) = values.take(all: false)
        #expect(fresh.map(\.key) == ["door"])
        // An empty value is no state: the last real one stays.
        #expect(published.map(\.value) == ["open"] && dirty.map(\.key) == ["door"])
        #expect(values.value(board: "hall", key: "door") == "open")
        // Only changes are taken again, unless all are asked for.
        #expect(values.take(all: false).values.isEmpty)
        #expect(values.take(all: true).values.count == 1)
    }
}
