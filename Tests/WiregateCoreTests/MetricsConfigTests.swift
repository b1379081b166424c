import Testing

@testable import WiregateCore

/// `metrics:`: where /metrics listens, and every mistake said at its place.
@Suite struct MetricsConfigTests {
    func parse(_ metrics: String) throws(ConfigError) -> GatewayConfig {
        try GatewayConfig.parse(
            yaml: ConfigTests.valid
                + "\nmetrics: \(metrics)\nbackend: { url: https://b.example, heartbeat_interval: 5s }",
            file: "test.yaml")
    }

    func mistake(_ metrics: String) -> String? {
        do {
            _ = try parse(metrics)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func offWithoutTheSectionAndLoopbackAddressesAccepted() throws {
        #expect(try GatewayConfig.parse(yaml: ConfigTests.valid, file: "t.yaml").metrics == nil)
        #expect(try parse("{ listen: 127.0.0.1:9723 }").metrics == .init(host: "127.0.0.1", port: 9723))
        #expect(try parse("{ listen: \"[::1]:9100\" }").metrics == .init(host: "::1", port: 9100))
        #expect(try parse("{ listen: \"localhost:9723\" }").metrics == .init(host: "127.0.0.1", port: 9723))
        #expect(try parse("{ listen: \":9723\" }").metrics == .init(host: "127.0.0.1", port: 9723))
        #expect(try parse("{ listen: 127.0.0.5:9723 }").metrics?.host == "127.0.0.5")
        #expect(try parse("{ listen: 127.0.0.1:9723 }").backend?.heartbeatInterval == .seconds(5))
    }

    @Test func aNonLoopbackAddressNeedsAllowRemote() throws {
        for address in ["0.0.0.0:9723", "192.168.1.10:9723", "\"[::]:9723\"", "\"[fe80::1]:9723\""] {
            let problem = try #require(mistake("{ listen: \(address) }"), "\(address)")
            #expect(problem.contains("metrics.listen"), "\(problem)")
            #expect(problem.contains("not a loopback address"), "\(problem)")
        }
        #expect(try parse("{ listen: 0.0.0.0:9723, allow_remote: true }").metrics?.host == "0.0.0.0")
    }

    @Test func mistakesAreSaidWithTheirKey() throws {
        let cases: [(String, String)] = [
            ("{ listen: example.com:9723 }", "is not an IP address"),
            ("{ listen: 127.0.0.1 }", "must be an address and a port"),
            ("{ listen: 127.0.0.1:0 }", "must be an address and a port"),
            ("{ listen: 127.0.0.1:70000 }", "must be an address and a port"),
            ("{ listen: \"::1:9723\" }", "must be an address and a port"),
            ("{ listen: 300.1.1.1:9723 }", "is not an IP address"),
            ("{ port: 9723 }", "port"),
            ("{ listen: 127.0.0.1:9723, allow_remote: maybe }", "allow_remote")
        ]
        for (metrics, expected) in cases {
            let problem = try #require(mistake(metrics), "\(metrics)")
            #expect(problem.contains(expected), "\(metrics): \(problem)")
            #expect(problem.contains("test.yaml:"), "\(problem)")
        }
        #expect(mistake("{ listen: 127.0.0.1:9723 }\nmqtt_extra: 1")?.contains("mqtt_extra") == true)
    }
}
