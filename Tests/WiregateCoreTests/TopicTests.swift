import Testing

@testable import WiregateCore

@Suite struct TopicTests {
    /// The event builder of one board with `protocol`.
    static func builder(protocol name: String) throws -> EventBuilder {
        let config = try GatewayConfig.parse(
            yaml: """
                gateway: { id: gw }
                mqtt: { host: 127.0.0.1 }
                boards: [ { name: b, match: { path: /dev/ttyACM0 }, protocol: \(name) } ]
                """, file: "t.yaml")
        return EventBuilder(board: config.boards[0], config: config)
    }

    @Test(arguments: [
        ("a/#", "a__"),
        ("+", "_"),
        ("#", "_"),
        ("$SYS", "_SYS"),
        ("../x", ".._x"),
        ("..", "_"),
        (".", "_"),
        ("  door  ", "door"),
        ("tab\there", "tab_here"),
        ("température", "température"),
        // A combining mark after the character makes one Character of the two, but the broker
        // sees the bytes: still a separator, a wildcard, a reserved '$' (found by wiregate-fuzz).
        ("a/\u{35D}b", "a_\u{35D}b"),
        ("+\u{301}", "_\u{301}"),
        ("#\u{301}", "_\u{301}"),
        ("$\u{35D}x", "_\u{35D}x")
    ])
    func hostileLevelsBecomeOneOrdinaryLevel(raw: String, expected: String) {
        let level = Topic.sanitisedLevel(raw)
        #expect(level == expected)
        #expect(
            level.map { !$0.utf8.contains(where: { "/+#".utf8.contains($0) }) && $0.utf8.first != UInt8(ascii: "$") }
                == true)
    }

    /// What MQTT 5 (1.5.4) forbids or discourages, and libmosquitto refuses with
    /// MOSQ_ERR_MALFORMED_UTF8: one such line stalled every alarm behind it (the hostile review).
    @Test(arguments: [
        UInt32(0x00), 0x01, 0x1F, 0x7F, 0x80, 0x85, 0x9F,  // C0, DEL, C1
        0xFDD0, 0xFDEF, 0xFFFE, 0xFFFF, 0x1FFFE, 0x2FFFF, 0x10FFFE, 0x10FFFF
    ])  // non-characters
    func charactersMQTTForbidsBecomeUnderscores(codePoint: UInt32) {
        let scalar = String(Unicode.Scalar(codePoint)!)
        #expect(Topic.sanitisedLevel("a" + scalar + "b") == "a_b")
        // At the edge a forbidden character that is also whitespace (U+0085) is trimmed instead.
        #expect(Topic.sanitisedLevel(scalar + "x").map { $0 == "_x" || $0 == "x" } == true)
    }

    @Test(arguments: [UInt32(0xA0), 0xFDCF, 0xFDF0, 0xFFFD, 0x1FFFD, 0x10000])
    func neighboursOfForbiddenCharactersStay(codePoint: UInt32) {
        let scalar = String(Unicode.Scalar(codePoint)!)
        #expect(Topic.sanitisedLevel("a" + scalar + "b") == "a" + scalar + "b")
    }

    @Test func configuredNamesWithForbiddenCharactersAreRefused() {
        #expect(Topic.problem(inConfiguredLevel: "front\u{85}door") != nil)
        #expect(Topic.problem(inConfiguredTopic: "wiregate/" + String(Unicode.Scalar(0xFFFF)!)) != nil)
        #expect(HelloPattern("#hello id=<name>")!.name(in: "#hello id=bad\u{9B}name") == nil)
        let identity = BoardIdentity(source: .serial, value: "AB\u{90}CD")
        #expect(identity.adoptedName == "AB_CD")
    }

    @Test func aLineDeeperThanTheCapIsMalformed() throws {
        let builder = try Self.builder(protocol: "json")
        var deep = "1"
        for _ in 0...Topic.maxDepth { deep = "{\"a\":\(deep)}" }
        guard case .malformed(let reason) = builder.outcome(for: deep, receivedAt: .now) else {
            Issue.record("a \(Topic.maxDepth + 1)-level topic was accepted")
            return
        }
        #expect(reason.contains("levels"))
        var shallow = "1"
        for _ in 0..<Topic.maxDepth { shallow = "{\"a\":\(shallow)}" }
        guard case .events(let events) = builder.outcome(for: shallow, receivedAt: .now) else {
            Issue.record("a \(Topic.maxDepth)-level topic was refused")
            return
        }
        #expect(events.count == 1)
    }

    /// The regression: a `\u0000` in a JSON value was cut by SQLite's text binding and poisoned a
    /// backend batch (PostgreSQL refuses NUL).
    @Test func controlCharactersInValuesMakeTheLineMalformed() throws {
        let builder = try Self.builder(protocol: "json")
        for line in [#"{"a":"x\u0000y"}"#, #"{"a":"x\u0085"}"#, #"{"a":"\u001b[2J"}"#, #"{"a":1,"b":"\u0007"}"#] {
            guard case .malformed = builder.outcome(for: line, receivedAt: .now) else {
                Issue.record("\(line) was accepted")
                continue
            }
        }
        guard case .events(let events) = builder.outcome(for: #"{"a":"tab\there é"}"#, receivedAt: .now) else {
            Issue.record("a tab in a value was refused")
            return
        }
        #expect(events.first?.payload == "tab\there é")
    }

    @Test func emptyLevelsAreRefused() {
        #expect(Topic.sanitisedLevel("") == nil)
        #expect(Topic.sanitisedLevel("   ") == nil)
    }

    @Test func longLevelsAreCut() {
        let level = Topic.sanitisedLevel(String(repeating: "é", count: 200))!
        #expect(level.utf8.count <= Topic.maxLevelLength)
    }

    @Test func configuredTopicsAreChecked() {
        #expect(Topic.problem(inConfiguredTopic: "wiregate") == nil)
        #expect(Topic.problem(inConfiguredTopic: "home/wiregate") == nil)
        #expect(Topic.problem(inConfiguredTopic: "a/+/b") != nil)
        #expect(Topic.problem(inConfiguredTopic: "a//b") != nil)
        #expect(Topic.problem(inConfiguredTopic: "/a") != nil)
        #expect(Topic.problem(inConfiguredTopic: "$SYS") != nil)
        #expect(Topic.problem(inConfiguredLevel: "a/b") != nil)
        // Checked by byte: a combining mark does not hide a wildcard, a separator or a '$'.
        #expect(Topic.problem(inConfiguredTopic: "a/+\u{301}") != nil)
        #expect(Topic.problem(inConfiguredTopic: "a/#\u{301}") != nil)
        #expect(Topic.problem(inConfiguredTopic: "$\u{301}SYS") != nil)
        #expect(Topic.problem(inConfiguredLevel: "a/\u{35D}b") != nil)
    }

    /// wiregate-fuzz's first find (Tests/fuzz-corpus/regression-combining-mark-after-slash): a
    /// key starting with a combining mark, right after the board's "/", is still one level below it.
    @Test func combiningMarkAfterTheBoardPrefix() throws {
        let builder = try Self.builder(protocol: "kv")
        var topics: [String] = []
        for line in ["\u{35D}9=:", "$\u{35D}=1"] {
            guard case .events(let events) = builder.outcome(for: line, receivedAt: .now) else {
                Issue.record("'\(line)' not decoded")
                continue
            }
            topics += events.map(\.topic)
        }
        #expect(
            topics.map { Array($0.utf8) } == ["wiregate/gw/b/\u{35D}9", "wiregate/gw/b/_\u{35D}"].map { Array($0.utf8) }
        )
        #expect(topics.allSatisfy { Topic.problem(inConfiguredTopic: $0) == nil })
    }

    @Test func templatesRenderSanitisedFields() throws {
        let template = try TopicTemplate("{sensor}/room-{room}")
        #expect(template.fields == ["sensor", "room"])
        #expect(template.render { ["sensor": "door", "room": "1"][$0] } == ["door", "room-1"])
        #expect(template.render { ["sensor": "a/#", "room": "$x"][$0] } == ["a__", "room-$x"])
        #expect(template.render { ["sensor": "door"][$0] } == nil)
        #expect(template.render { ["sensor": "", "room": "1"][$0] } == nil)
    }

    @Test(arguments: ["{sensor", "sensor}", "{}", "a/{b}/#", "{a}//{b}", "{a b}", "$SYS/{a}"])
    func badTemplatesAreRefused(text: String) {
        #expect(throws: TemplateError.self) { try TopicTemplate(text) }
    }
}
