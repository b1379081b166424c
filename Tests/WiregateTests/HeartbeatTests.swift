import Foundation
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// The heartbeat to the Django backend (gunicorn, PostgreSQL, a local SMTP server): the news of
/// a dead broker reaches the owner without the broker.
@Suite(.serialized) struct HeartbeatTests {
    func yaml(
        _ broker: MosquittoBroker, _ board: SimulatedBoard, _ backend: DjangoBackend, gatewayID: String = "test-gw",
        state: String? = nil, tokenFile: String? = nil
    ) -> String {
        GatewayHarness.yaml(
            port: broker.port, gatewayID: gatewayID,
            boards: """
                  - { name: hall, match: { path: \(board.path) }, protocol: kv, settle: 0s }
                """, stateDirectory: state,
            backend: "\(backend.configKeys), timeout: 5s, retry_max: 1s, heartbeat_interval: 1s"
                + (tokenFile.map { ", token_file: \($0)" } ?? ""))
    }

    func harness(
        _ broker: MosquittoBroker, _ board: SimulatedBoard, _ backend: DjangoBackend, gatewayID: String = "test-gw",
        token: String? = nil, state: String? = nil
    ) throws -> GatewayHarness {
        try GatewayHarness(
            yaml: yaml(broker, board, backend, gatewayID: gatewayID, state: state), backendToken: token ?? backend.token
        )
    }

    @Test func theBrokerLostAndBackAndTheGatewayStoppedEachReachTheOwnerOnce() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let smtp = try SMTPSink()
        let backend = try DjangoBackend(smtpPort: smtp.port)
        let state = try makeTemporaryDirectory("heartbeat")
        let harness = try harness(broker, board, backend, state: state)
        #expect(await eventually { (try? backend.gatewayState()) == "operational" })
        #expect(harness.gateway.health.topic == "wiregate/test-gw/health")

        broker.kill()
        // At once, not at the next interval: the heartbeat follows the broker connection.
        #expect(await eventually(timeout: .seconds(15)) { (try? backend.gatewayState()) == "degraded" })
        try await Task.sleep(for: .seconds(3))  // more heartbeats, still degraded: no second e-mail
        #expect(smtp.subjects.filter { $0.contains("is degraded") }.count == 1, "\(smtp.subjects)")
        #expect(smtp.subjects.first?.contains("the broker is disconnected") == true, "\(smtp.subjects)")
        let status = await harness.gateway.health.report()
        #expect(status.heartbeat?.ok == true)
        #expect(status.heartbeat?.backendState == "degraded")
        // `wiregate status` shows it; its JSON carries the whole report.
        let configFile = state + "/wiregate.yaml"
        let tokenFile = state + "/token"
        #expect(
            FileManager.default.createFile(
                atPath: tokenFile, contents: Data(backend.token.utf8), attributes: [.posixPermissions: 0o600]))
        try yaml(broker, board, backend, state: state, tokenFile: tokenFile).write(
            toFile: configFile, atomically: true, encoding: .utf8)
        let text = try runWiregate(["status", "--config", configFile])
        #expect(text.output.contains("heartbeat: taken at"), "\(text.output)")
        #expect(text.output.contains("the backend says degraded"), "\(text.output)")
        let json = try runWiregate(["status", "--json", "--config", configFile])
        let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        let health = object?["health"] as? [String: Any]
        #expect((health?["mqtt"] as? [String: Any])?["connected"] as? Bool == false, "\(json.output)")
        #expect((health?["boards"] as? [String: Any])?["hall"] != nil)
        #expect((health?["heartbeat"] as? [String: Any])?["ok"] as? Bool == true)

        try broker.start()
        #expect(await eventually(timeout: .seconds(30)) { (try? backend.gatewayState()) == "operational" })
        #expect(await eventually { smtp.subjects.count == 2 })
        #expect(smtp.subjects.last?.contains("test-gw is operational") == true, "\(smtp.subjects)")

        await harness.stop()
        // Three intervals of 1 s without a heartbeat, then the timer's command.
        try await Task.sleep(for: .seconds(4))
        #expect(try backend.checkHeartbeats().contains("test-gw: disconnected"))
        #expect(try backend.gatewayState() == "disconnected")
        #expect(await eventually { smtp.subjects.count == 3 })
        #expect(smtp.subjects.last?.contains("test-gw is disconnected") == true, "\(smtp.subjects)")
    }

    @Test func aWrongTokenOrAnotherGatewaysIDIsRefused() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let backend = try DjangoBackend()
        let wrong = try harness(broker, board, backend, token: "0123456789abcdef0123456789abcdef01234567")
        #expect(await eventually { await wrong.gateway.health.report().heartbeat?.status == 401 })
        #expect(await wrong.gateway.health.report().heartbeat?.ok == false)
        await wrong.stop()
        // test-gw's own token, for another gateway id.
        let other = try harness(broker, board, backend, gatewayID: "other-gw")
        #expect(await eventually { await other.gateway.health.report().heartbeat?.status == 403 })
        await other.stop()
        #expect(try backend.gatewayState("other-gw") == nil)
        #expect(try backend.gatewayState("test-gw") == nil)
    }

    @Test func theHeartbeatKeepsItsIntervalWhileABacklogOfAHundredThousandUploads() async throws {
        let state = try makeTemporaryDirectory("heartbeat-backlog")
        var settings = try GatewayConfig.parse(
            yaml: GatewayHarness.yaml(port: 1, boards: "  - { name: hall, match: { path: /dev/null }, protocol: kv }"),
            file: "seed.yaml"
        ).journal
        settings.commitWindow = .zero
        let seed = try Journal(
            directory: state, settings: settings, sinks: [Journal.mqttSink, BackendSink.sinkName],
            logger: .init(label: "seed"))
        let events = 100_000
        for chunk in stride(from: 0, to: events, by: 1000) {
            await seed.append(
                (chunk..<chunk + 1000).map { n in
                    Event(
                        board: "hall", topic: "wiregate/test-gw/hall/temp", subtopic: "temp", payload: "\(n)",
                        eventClass: .telemetry, receivedAt: Date())
                })
        }
        await seed.close()

        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let backend = try DjangoBackend()
        let harness = try harness(broker, board, backend, state: state)
        // Every heartbeat the gateway got an answer for, while the upload runs.
        var answered: [Date] = []
        var uploaded = 0
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            if let last = await harness.gateway.health.report().heartbeat, last.ok, last.attemptedAt != answered.last {
                answered.append(last.attemptedAt)
            }
            uploaded = (try? backend.storedCount()) ?? uploaded
            if uploaded >= events { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        await harness.stop()
        #expect(uploaded >= events)
        let gaps = zip(answered.dropFirst(), answered).map { $0.timeIntervalSince($1) }
        // The upload took several intervals; each interval had its heartbeat answered.
        #expect(answered.count >= 3, "\(answered)")
        #expect((gaps.max() ?? 99) < 3, "gaps between answered heartbeats: \(gaps)")
    }
}
