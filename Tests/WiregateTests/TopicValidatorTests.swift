import CMosquitto
import Foundation
import Testing
import WiregateCore

/// Every topic made from board data, checked by libmosquitto's own validators (what refuses a
/// publish with MOSQ_ERR_MALFORMED_UTF8 or MOSQ_ERR_INVAL), not only by the project's rules:
/// seeded random lines over an alphabet of what MQTT forbids, discourages or treats specially.
@Suite struct TopicValidatorTests {
    /// What a hostile or broken board may put in a key: C0 and C1 controls, DEL, non-characters in
    /// several planes, wildcards, separators, `$`, combining marks, whitespace, and plain letters.
    static let alphabet: [Unicode.Scalar] =
        [
            0x01, 0x09, 0x1F, 0x7F, 0x80, 0x85, 0x9B, 0x9F, 0xA0, 0xFDD0, 0xFDE5, 0xFDEF, 0xFFFE, 0xFFFF,
            0x1FFFE, 0x10FFFF, 0x301, 0x35D, 0x2028, 0xFEFF, 0xFFFD, 0x1F6A8
        ].compactMap(Unicode.Scalar.init) + Array("$+#/ .=;:,{}\"\\abcz09é".unicodeScalars)

    static let builders: [EventBuilder] = {
        let config = try! GatewayConfig.parse(
            yaml: """
                gateway: { id: gw }
                mqtt: { host: 127.0.0.1 }
                boards:
                  - { name: kv, match: { path: /dev/a }, protocol: kv }
                  - { name: json, match: { path: /dev/b }, protocol: json }
                  - { name: influx, match: { path: /dev/c }, protocol: influx }
                  - { name: mysensors, match: { path: /dev/d }, protocol: mysensors }
                """, file: "validator.yaml")
        return config.boards.map { EventBuilder(board: $0, config: config) }
    }()

    static func libmosquittoAccepts(_ topic: String) -> Bool {
        var topic = topic
        return topic.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                mosquitto_validate_utf8(chars.baseAddress, Int32(chars.count)) == MOSQ_ERR_SUCCESS.rawValue
                    && mosquitto_pub_topic_check2(chars.baseAddress, chars.count) == MOSQ_ERR_SUCCESS.rawValue
            }
        }
    }

    @Test func theValidatorRefusesWhatTheReviewFound() {
        // The check itself works: these are what stalled a class on main.
        #expect(!Self.libmosquittoAccepts("wiregate/gw/kv/a\u{85}b"))
        #expect(!Self.libmosquittoAccepts("wiregate/gw/kv/" + String(Unicode.Scalar(0xFDD0)!)))
        #expect(!Self.libmosquittoAccepts("wiregate/gw/kv/+"))
        #expect(Self.libmosquittoAccepts("wiregate/gw/kv/température"))
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func everyTopicFromRandomHostileLinesIsOneLibmosquittoTakes(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var checked = 0
        for _ in 0..<2_000 {
            func word() -> String {
                var text = ""
                for _ in 0..<Int.random(in: 1...6, using: &random) {
                    text.unicodeScalars.append(Self.alphabet.randomElement(using: &random)!)
                }
                return text
            }
            let lines = [
                "\(word())=\(word());\(word())=1",  // kv
                "{\"\(word())\":{\"\(word())\":1},\"\(word())\":2}",  // json, nested
                "\(word()),tag=\(word()) \(word())=1i",  // influx
                "\(word());\(word());1;0;\(word());1"  // mysensors
            ]
            for builder in Self.builders {
                for line in lines {
                    guard case .events(let events) = builder.outcome(for: line, receivedAt: .now) else { continue }
                    for event in events {
                        #expect(
                            Self.libmosquittoAccepts(event.topic),
                            "seed \(seed): \(event.topic.debugDescription) from \(line.debugDescription)")
                        #expect(
                            event.topic.utf8.starts(with: "wiregate/gw/\(builder.board.name)/".utf8),
                            "seed \(seed): \(event.topic)")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 1_000, "too few lines decoded to check anything: \(checked)")
    }
}
