import Foundation
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// The broker going away in the ways TESTING.md lists, and the protocol versions.
@Suite(.serialized) struct BrokerOutageTests {
    @Test func silentOutageIsNoticedByKeepaliveAndRecovered() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/test-gw/sim/line")
        // keepalive 5 s (the minimum): a broker that stops answering is noticed after about 1.5x that.
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: raw, settle: 0s }
                    """, mqttExtra: ", connect_timeout: 2s"))
        #expect(await eventually { harness.gateway.directory.isOnline("sim") && harness.gateway.mqtt.isConnected })
        board.send("prime")
        broker.pause()  // SIGSTOP: no RST, the socket just goes quiet
        #expect(await eventually(timeout: .seconds(20)) { !harness.gateway.mqtt.isConnected })
        // The flag drops on the network thread; the counter when the sink has read the event.
        #expect(await eventually { harness.gateway.mqtt.counters.connectionLosses == 1 })
        for n in 0..<20 { board.send("during-\(n)") }
        try await Task.sleep(for: .seconds(1))
        broker.resume()
        #expect(await eventually(timeout: .seconds(20)) { harness.gateway.mqtt.isConnected })
        #expect(
            await subscriber.waitAsync(timeout: .seconds(10)) {
                $0.filter { $0.payload.hasPrefix("during-") }.count >= 20
            })
        await harness.stop()
    }

    @Test func mqtt311WhenConfigured() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/#")
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: raw, settle: 0s, commands: [ PING ] }
                    """, mqttExtra: ", protocol: \"3.1.1\""))
        #expect(await eventually { harness.gateway.directory.isOnline("sim") && harness.gateway.mqtt.isConnected })
        board.send("prime")
        board.send("hello-311")
        #expect(await subscriber.waitAsync(timeout: .seconds(5)) { $0.contains { $0.payload == "hello-311" } })
        // 3.1.1 has no user properties.
        #expect(subscriber.messages.first { $0.payload == "hello-311" }?.properties == "")
        try await publish(port: broker.port, topic: "wiregate/test-gw/sim/set", payload: "PING")
        #expect(await board.receivedLines(within: .seconds(10)) { $0.contains("PING") } == ["PING"])
        await harness.stop()
        // The will / farewell work the same in 3.1.1.
        #expect(
            await subscriber.waitAsync(timeout: .seconds(5)) {
                $0.last { $0.topic == "wiregate/test-gw/status" }?.payload == "offline"
            })
    }

    @Test func brokerDownAtStartIsRetriedWithBackoff() async throws {
        let port = try freeLoopbackPort()
        let board = try SimulatedBoard()
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: raw, settle: 0s }
                    """))
        try await Task.sleep(for: .seconds(1))
        #expect(!harness.gateway.mqtt.isConnected)
        #expect(await eventually { harness.gateway.directory.isOnline("sim") })
        board.send("queued-before-the-broker")
        #expect(await eventually { await harness.gateway.journal.pendingCount()[.telemetry] == 1 })
        let broker = try MosquittoBroker(port: port)
        let subscriber = try Subscriber(port: broker.port, filter: "wiregate/test-gw/sim/line")
        #expect(await eventually { harness.gateway.mqtt.isConnected })
        // Either already sent before the subscriber was in place, or arrives now: the queue is empty either way.
        #expect(await eventually { await harness.gateway.journal.pendingCount().values.reduce(0, +) == 0 })
        board.send("after")
        #expect(await subscriber.waitAsync(timeout: .seconds(5)) { $0.contains { $0.payload == "after" } })
        await harness.stop()
    }
}
