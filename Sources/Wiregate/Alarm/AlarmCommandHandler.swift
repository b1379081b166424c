import Foundation
import Logging
import WiregateCore

/// `<base>/<gateway>/alarm/set`: Home Assistant's alarm panel payloads, plain (`ARM_AWAY`) or
/// with a code (`{"action": "DISARM", "code": "1234"}`).
///
/// Disarming always takes a code, and over a broker connection without TLS (the code would
/// cross the network in clear) it is refused unless `alarm.allow_disarm_without_tls` says so.
/// A retained command is refused: a command is an action, never a state. The code is never logged.
public struct AlarmCommandHandler: MQTTMessageHandler {
    private let panel: AlarmPanel
    private let topic: String
    private let disarmAllowed: Bool
    private let logger: Logger

    /// - Parameters:
    ///   - panel: where the commands go.
    ///   - config: gives the topic, whether the broker connection has TLS, and the alarm's settings.
    public init(panel: AlarmPanel, config: GatewayConfig, logger: Logger) {
        self.panel = panel
        topic = config.alarmCommandTopic
        disarmAllowed = config.mqtt.tls != nil || config.alarm?.allowDisarmWithoutTLS == true
        self.logger = logger
    }

    /// The one topic it takes.
    public var filters: [String] { [topic] }

    /// One command: parsed, checked, handed to the panel; every refusal logged (without the code).
    public func handle(topic: String, payload: [UInt8], retained: Bool) async {
        guard !retained else {
            return logger.warning("alarm command refused: it was published retained, and a command is an action")
        }
        guard let (command, code) = Self.parse(payload) else {
            return logger.warning(
                "alarm command refused: not ARM_AWAY, ARM_HOME, ARM_NIGHT, ARM_VACATION, DISARM or their JSON form",
                metadata: ["length": "\(payload.count)"])
        }
        if command == .disarm && !disarmAllowed {
            return logger.warning(
                "alarm disarm refused: the broker connection has no TLS (set alarm.allow_disarm_without_tls to allow it)"
            )
        }
        let outcome = await panel.submit(command, code: code, source: .mqtt)
        logger.info("alarm command over MQTT", metadata: ["outcome": "\(outcome)"])
    }

    /// The command and its code, from a plain action or `{"action": ..., "code": ...}`.
    static func parse(_ payload: [UInt8]) -> (AlarmStateMachine.Command, String?)? {
        guard payload.count <= 1024, let text = String(validating: payload, as: UTF8.self) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if let command = AlarmPanel.command(trimmed) { return (command, nil) }
        guard let object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any],
            let action = object["action"] as? String, let command = AlarmPanel.command(action)
        else { return nil }
        // A code typed as digits may come as a JSON number; Home Assistant sends null (or, from an
        // older template, an empty string) when none was typed.
        let code = (object["code"] as? String) ?? (object["code"] as? NSNumber).map { "\($0)" }
        return (command, code?.isEmpty == true ? nil : code)
    }
}
