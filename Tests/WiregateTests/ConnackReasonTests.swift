import Testing
import WiregateCore

@testable import Wiregate

/// What the log says when the broker refuses the connection: libmosquitto's words, and for a
/// refusal of the credentials, where to look.
@Suite struct ConnackReasonTests {
    @Test func credentialsRefusalsSayWhereTheCredentialsAre() {
        for (code, version) in [
            (Int32(0x86), GatewayConfig.MQTT.ProtocolVersion.v5), (0x87, .v5), (4, .v311), (5, .v311)
        ] {
            let reason = MosquittoClient.connackReason(code, version: version)
            #expect(
                reason.contains(
                    "check mqtt.username, and the password in mqtt.password_file or \(GatewayConfig.passwordEnvironmentVariable)"
                ),
                "\(code) \(version): \(reason)")
        }
    }

    @Test func otherRefusalsAreLibmosquittosWordsAlone() {
        // MQTT 5: 0x88 server unavailable, 0x8A banned; 3.1.1: 2 identifier rejected, 3 server unavailable.
        for (code, version, words) in [
            (Int32(0x88), GatewayConfig.MQTT.ProtocolVersion.v5, "Server unavailable"),
            (0x8A, .v5, "Banned"),
            (2, .v311, "identifier rejected"),
            (3, .v311, "unavailable")
        ] {
            let reason = MosquittoClient.connackReason(code, version: version)
            #expect(reason.localizedCaseInsensitiveContains(words), "\(code): \(reason)")
            #expect(!reason.contains("mqtt.username"), "\(code): \(reason)")
        }
    }
}
