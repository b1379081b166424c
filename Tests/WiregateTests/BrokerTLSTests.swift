import Foundation
import Synchronization
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// TLS and authentication against a real mosquitto configured as `deploy/mosquitto` configures
/// the house broker, with certificates made by `deploy/mosquitto/make-certs.sh`.
@Suite(.serialized) struct BrokerTLSTests {
    static let certificates = Result { try HouseBroker.makeCertificates() }

    func certificates() throws -> URL { try Self.certificates.get() }
    func file(_ name: String) throws -> String { try certificates().appendingPathComponent(name).path }

    /// What a client with this config reports first: `.connected` or the reason it could not connect.
    func firstOutcome(
        port: Int, tls: String, password: String = HouseBroker.passwords["wiregate"]!,
        gatewayID: String = "house-1"
    ) async throws -> (connected: Bool, reason: String) {
        let yaml = GatewayHarness.yaml(
            port: port, gatewayID: gatewayID, boards: "  - { name: idle, match: { path: /dev/null }, protocol: raw }",
            mqttExtra: ", username: wiregate, tls: { \(tls) }")
        let config = try GatewayConfig.parse(yaml: yaml, file: "tls.yaml")
        let client = try MosquittoClient(options: .init(config: config, password: password))
        client.start()
        defer { Task { await client.shutdown() } }
        let outcome = await withTaskGroup(of: (Bool, String)?.self) { group in
            group.addTask {
                for await event in client.events {
                    switch event {
                    case .connected: return (true, "")
                    case .connectFailed(let reason), .connectionLost(let reason): return (false, reason)
                    default: continue
                    }
                }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(10)); return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        await client.shutdown()
        return outcome ?? (false, "no outcome within 10 s")
    }

    var goodTLS: String {
        get throws {
            "ca_file: \(try file("ca.crt")), cert_file: \(try file("wiregate.crt")), key_file: \(try file("wiregate.key"))"
        }
    }

    @Test func gatewayPublishesOverTLSWithItsCertificateAndPassword() async throws {
        let house = try HouseBroker(certificates: certificates())
        let subscriber = try Subscriber(
            port: house.port, filter: "wiregate/#", connection: house.clientOptions(user: "house"))
        let board = try SimulatedBoard()
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: house.port, gatewayID: "house-1",
                boards: """
                      - { name: door, match: { path: \(board.path) }, protocol: kv, settle: 0s }
                    """, mqttExtra: ", username: wiregate, tls: { \(try goodTLS) }"),
            password: HouseBroker.passwords["wiregate"])
        let n = Atomic(0)
        let arrived = await eventually(timeout: .seconds(15)) {
            board.send("seq=\(n.add(1, ordering: .relaxed).oldValue)\n")
            return subscriber.messages.contains { $0.topic == "wiregate/house-1/door/seq" }
        }
        #expect(arrived, "broker log: \(house.broker.log.suffix(800))")
        #expect(subscriber.messages.contains { $0.topic == "wiregate/house-1/status" && $0.payload == "online" })
        await harness.stop()
        #expect(
            house.broker.log.contains("as wiregate (") || house.broker.log.contains("u'wiregate'"),
            "\(house.broker.log.suffix(800))")
    }

    @Test func serverNameIsCheckedInsteadOfTheAddress() async throws {
        let house = try HouseBroker(certificates: certificates())
        let named = try await firstOutcome(port: house.port, tls: "\(try goodTLS), server_name: broker.house.lan")
        #expect(named.connected, "\(named.reason)")
        let wrong = try await firstOutcome(port: house.port, tls: "\(try goodTLS), server_name: other.house.lan")
        #expect(!wrong.connected)
        #expect(
            wrong.reason.contains("is not for 'other.house.lan'") && wrong.reason.contains("hostname mismatch"),
            "\(wrong.reason)")
    }

    @Test func wrongCAIsRefusedNamingTheFile() async throws {
        let house = try HouseBroker(certificates: certificates())
        let otherCA = try HouseBroker.makeCertificates().appendingPathComponent("ca.crt").path
        let outcome = try await firstOutcome(
            port: house.port,
            tls: "ca_file: \(otherCA), cert_file: \(try file("wiregate.crt")), key_file: \(try file("wiregate.key"))")
        #expect(!outcome.connected)
        #expect(outcome.reason.contains("not trusted by mqtt.tls.ca_file '\(otherCA)'"), "\(outcome.reason)")
        // The broker sends its CA along with its certificate: OpenSSL then names that.
        #expect(
            outcome.reason.contains("self-signed certificate in certificate chain")
                || outcome.reason.contains("unable to get local issuer certificate"), "\(outcome.reason)")
    }

    @Test func missingClientCertificateIsRefused() async throws {
        let house = try HouseBroker(certificates: certificates())
        let outcome = try await firstOutcome(port: house.port, tls: "ca_file: \(try file("ca.crt"))")
        #expect(!outcome.connected)
        // The alert itself, or (when the broker's reset discarded it) the likely cause.
        #expect(
            outcome.reason.contains("the broker requires a client certificate")
                || outcome.reason.contains("it probably requires a client certificate"), "\(outcome.reason)")
    }

    @Test func expiredServerCertificateIsRefused() async throws {
        let expired = try makeExpiredServerCertificate()
        let house = try HouseBroker(certificates: certificates(), serverCertificate: expired)
        let outcome = try await firstOutcome(port: house.port, tls: try goodTLS)
        #expect(!outcome.connected)
        #expect(outcome.reason.contains("certificate has expired"), "\(outcome.reason)")
    }

    @Test func expiredClientCertificateIsReportedAndRefused() async throws {
        let expired = try makeExpiredCertificate(commonName: "wiregate", extensions: "extendedKeyUsage=clientAuth")
        let yaml = GatewayHarness.yaml(
            port: 1, gatewayID: "house-1", boards: "  - { name: idle, match: { path: /dev/null }, protocol: raw }",
            mqttExtra:
                ", tls: { ca_file: \(try file("ca.crt")), cert_file: \(expired.certificate.path), key_file: \(expired.key.path) }"
        )
        let client = try MosquittoClient(
            options: .init(config: try GatewayConfig.parse(yaml: yaml, file: "tls.yaml"), password: nil))
        #expect(
            client.clientCertificateProblem?.contains("the certificate expired on 2024-01-02") == true,
            "\(client.clientCertificateProblem ?? "nil")")
        let house = try HouseBroker(certificates: certificates())
        let outcome = try await firstOutcome(
            port: house.port,
            tls: "ca_file: \(try file("ca.crt")), cert_file: \(expired.certificate.path), key_file: \(expired.key.path)"
        )
        #expect(!outcome.connected)
        #expect(
            outcome.reason.contains("refused this gateway's certificate")
                && outcome.reason.contains("certificate expired")
                || outcome.reason.contains(
                    "it probably refused this gateway's certificate mqtt.tls.cert_file '\(expired.certificate.path)'"),
            "\(outcome.reason)")
    }

    @Test func wrongPasswordIsRefused() async throws {
        let house = try HouseBroker(certificates: certificates())
        let outcome = try await firstOutcome(port: house.port, tls: try goodTLS, password: "not-the-password")
        #expect(!outcome.connected)
        #expect(
            outcome.reason.contains("the broker refused the connection")
                && outcome.reason.contains("Not authorized (check mqtt.username"),
            "\(outcome.reason)")
    }

    @Test func plainListenerIsNeverUsedInsteadOfTLS() async throws {
        let plain = try MosquittoBroker()
        let outcome = try await firstOutcome(port: plain.port, tls: try goodTLS)
        #expect(!outcome.connected)
        #expect(outcome.reason.contains("does not speak TLS"), "\(outcome.reason)")
        #expect(
            plain.log.isEmpty || !plain.log.contains("wiregate-house-1"), "the broker never saw a CONNECT: \(plain.log)"
        )
    }

    /// Never publishes: with an untrusted broker, the gateway keeps its events and retries.
    @Test func untrustedBrokerGetsNothingAndEventsWait() async throws {
        let house = try HouseBroker(certificates: certificates())
        let subscriber = try Subscriber(port: house.port, filter: "#", connection: house.clientOptions(user: "house"))
        let otherCA = try HouseBroker.makeCertificates().appendingPathComponent("ca.crt").path
        let board = try SimulatedBoard()
        let harness = try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: house.port, gatewayID: "house-1",
                boards: """
                      - { name: door, match: { path: \(board.path) }, protocol: kv, settle: 0s }
                    """,
                mqttExtra:
                    ", username: wiregate, tls: { ca_file: \(otherCA), cert_file: \(try file("wiregate.crt")), key_file: \(try file("wiregate.key")) }"
            ),
            password: HouseBroker.passwords["wiregate"])
        let n = Atomic(0)
        let journaled = await eventually(timeout: .seconds(10)) {
            board.send("seq=\(n.add(1, ordering: .relaxed).oldValue)\n")
            return (harness.board("door")?.counters.events ?? 0) >= 5
        }
        #expect(journaled)
        try await Task.sleep(for: .seconds(1))
        #expect(subscriber.messages.isEmpty, "\(subscriber.messages)")
        #expect(harness.gateway.mqtt.counters.connects == 0)
        #expect(harness.gateway.mqtt.counters.published == 0)
        await harness.stop()
    }

    @Test func aclKeepsTheGatewayInsideItsTree() async throws {
        let house = try HouseBroker(certificates: certificates())
        let subscriber = try Subscriber(port: house.port, filter: "#", connection: house.clientOptions(user: "house"))
        let yaml = GatewayHarness.yaml(
            port: house.port, gatewayID: "house-1",
            boards: "  - { name: idle, match: { path: /dev/null }, protocol: raw }",
            mqttExtra: ", username: wiregate, tls: { \(try goodTLS) }")
        let acknowledgements = Mutex<[Int32: Int32]>([:])
        let client = try MosquittoClient(
            options: .init(
                config: try GatewayConfig.parse(yaml: yaml, file: "acl.yaml"),
                password: HouseBroker.passwords["wiregate"])
        ) { mid, reason in
            acknowledgements.withLock { $0[mid] = reason }
        }
        client.start()
        #expect(await eventually { client.isConnected })
        let inside = try client.publish(topic: "wiregate/house-1/door/state", payload: "open").mid()
        let outside = try client.publish(topic: "house/alarm/state", payload: "disarmed").mid()
        let otherGateway = try client.publish(topic: "wiregate/house-2/door/state", payload: "open").mid()
        #expect(await eventually { acknowledgements.withLock { $0.count } == 3 })
        let codes = acknowledgements.withLock { $0 }
        #expect(codes[inside] == 0)
        #expect(codes[outside] == 0x87, "not authorised")
        #expect(codes[otherGateway] == 0x87, "not authorised")
        #expect(
            await subscriber.waitAsync(timeout: .seconds(5)) {
                $0.contains { $0.topic == "wiregate/house-1/door/state" }
            })
        try await Task.sleep(for: .milliseconds(300))
        #expect(
            !subscriber.messages.contains { $0.topic == "house/alarm/state" || $0.topic.hasPrefix("wiregate/house-2") })
        await client.shutdown()
    }

    @Test func checkConfigLoadsTheTLSFilesAndWarnsAboutReadableKeys() throws {
        let directory = try makeTemporaryDirectory("tls-check")
        let key = directory + "/wiregate.key"
        try FileManager.default.copyItem(atPath: try file("wiregate.key"), toPath: key)
        func check(key: String) throws -> (status: Int32, output: String) {
            let path = directory + "/wiregate.yaml"
            try """
            gateway: { id: house-1 }
            mqtt: { host: 127.0.0.1, tls: { ca_file: \(try file("ca.crt")), cert_file: \(try file("wiregate.crt")), key_file: \(key) } }
            boards: [ { name: a, match: { path: /dev/ttyACM0 }, protocol: raw } ]
            """.write(toFile: path, atomically: true, encoding: .utf8)
            return try runWiregate(["check-config", "--config", path])
        }
        chmod(key, 0o600)
        let good = try check(key: key)
        #expect(good.status == 0, "\(good.output)")
        #expect(
            good.output.contains(
                "TLS: the CA, certificate and key load; the broker's certificate must name '127.0.0.1'"),
            "\(good.output)")
        #expect(!good.output.contains("warning"))

        chmod(key, 0o644)
        let readable = try check(key: key)
        #expect(readable.status == 0)
        #expect(
            readable.output.contains("warning: mqtt.tls.key_file '\(key)' can be read by other users"),
            "\(readable.output)")

        // Another client's key with this certificate: refused at check time, naming the file.
        let wrongKey = try check(key: try file("house.key"))
        #expect(wrongKey.status == 78)
        #expect(
            wrongKey.output.contains(
                "mqtt.tls.key_file '\(try file("house.key"))': is not the key of \(try file("wiregate.crt"))"),
            "\(wrongKey.output)")
    }

    // MARK: - Certificates the script does not make

    /// A server certificate for 127.0.0.1 from the test CA, valid only in January 2024.
    func makeExpiredServerCertificate() throws -> (certificate: URL, key: URL) {
        try makeExpiredCertificate(
            commonName: "127.0.0.1", extensions: "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1")
    }

    /// `openssl ca` can back-date (`openssl x509 -req` of OpenSSL 3.0 cannot).
    func makeExpiredCertificate(commonName: String, extensions: String) throws -> (certificate: URL, key: URL) {
        let directory = URL(fileURLWithPath: try makeTemporaryDirectory("expired"))
        let path = { (name: String) in directory.appendingPathComponent(name).path }
        try "".write(toFile: path("index.txt"), atomically: true, encoding: .utf8)
        try "1000\n".write(toFile: path("serial"), atomically: true, encoding: .utf8)
        try extensions.write(toFile: path("ext.cnf"), atomically: true, encoding: .utf8)
        try """
        [ca]
        default_ca = expired
        [expired]
        database = \(path("index.txt"))
        new_certs_dir = \(directory.path)
        serial = \(path("serial"))
        default_md = sha256
        policy = any
        [any]
        commonName = supplied
        """.write(toFile: path("ca.cnf"), atomically: true, encoding: .utf8)
        try HouseBroker.succeed(
            "/usr/bin/openssl",
            ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path("expired.key")])
        try HouseBroker.succeed(
            "/usr/bin/openssl",
            ["req", "-new", "-key", path("expired.key"), "-subj", "/CN=\(commonName)", "-out", path("expired.csr")])
        try HouseBroker.succeed(
            "/usr/bin/openssl",
            [
                "ca", "-batch", "-config", path("ca.cnf"), "-cert", try file("ca.crt"), "-keyfile", try file("ca.key"),
                "-in", path("expired.csr"), "-out", path("expired.crt"), "-extfile", path("ext.cnf"),
                "-startdate", "20240101000000Z", "-enddate", "20240102000000Z", "-notext"
            ])
        return (directory.appendingPathComponent("expired.crt"), directory.appendingPathComponent("expired.key"))
    }
}
