import Foundation
import Glibc
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// Reading a config's secrets from their files (`GatewayConfig+Files`): real files, real modes.
@Suite struct ConfigSecretsTests {
    static let valid = """
        gateway: { id: house-1, state_dir: /var/lib/wiregate }
        mqtt: { host: 127.0.0.1, port: 1883, base_topic: wiregate, keepalive: 10, username: gw, password_file: /etc/wiregate/mqtt.pass }
        boards:
          - { name: front-door, match: { path: /dev/ttyACM0 }, protocol: kv }
        """

    @Test func passwordComesFromTheFileOrTheEnvironment() throws {
        let directory = URL(fileURLWithPath: try makeTemporaryDirectory("config"))
        let file = directory.appendingPathComponent("mqtt.pass")
        try "s3cret\n".write(to: file, atomically: true, encoding: .utf8)
        let config = try GatewayConfig.parse(
            yaml: Self.valid.replacingOccurrences(of: "/etc/wiregate/mqtt.pass", with: file.path), file: "t")
        #expect(try config.mqttPassword(environment: [:]) == "s3cret")

        let noFile = try GatewayConfig.parse(
            yaml: Self.valid.replacingOccurrences(of: ", password_file: /etc/wiregate/mqtt.pass", with: ""), file: "t")
        #expect(try noFile.mqttPassword(environment: ["WIREGATE_MQTT_PASSWORD": "fromenv"]) == "fromenv")
        #expect(try noFile.mqttPassword(environment: [:]) == nil)

        let missing = try GatewayConfig.parse(
            yaml: Self.valid.replacingOccurrences(of: "/etc/wiregate/mqtt.pass", with: directory.path + "/nope"),
            file: "t")
        #expect(throws: ConfigError.self) { try missing.mqttPassword(environment: [:]) }
    }

    /// Secrets that others can read are reported, by key and path, for the start-up warning.
    @Test func secretsOthersCanReadAreNamed() throws {
        let directory = try makeTemporaryDirectory("secrets")
        for name in ["gw.crt", "gw.key", "mqtt.pass"] {
            try "x\n".write(toFile: directory + "/" + name, atomically: false, encoding: .utf8)
        }
        let config = try GatewayConfig.parse(
            yaml: Self.valid
                .replacingOccurrences(of: "port: 1883, ", with: "")
                .replacingOccurrences(of: "/etc/wiregate/mqtt.pass", with: directory + "/mqtt.pass")
                .replacingOccurrences(
                    of: "password_file:",
                    with: "tls: { cert_file: \(directory)/gw.crt, key_file: \(directory)/gw.key }, password_file:"),
            file: "t")
        chmod(directory + "/gw.key", 0o600)
        chmod(directory + "/mqtt.pass", 0o640)
        #expect(config.secretFilesReadableByOthers.isEmpty)
        chmod(directory + "/gw.key", 0o644)
        #expect(config.secretFilesReadableByOthers.map(\.key) == ["mqtt.tls.key_file"])
        #expect(config.secretFilesReadableByOthers.map(\.path) == [directory + "/gw.key"])
    }
}
