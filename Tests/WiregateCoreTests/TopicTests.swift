import Testing
@testable import WiregateCore

@Suite struct TopicTests {
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
        ("$\u{35D}x", "_\u{35D}x"),
    ])
    func hostileLevelsBecomeOneOrdinaryLevel(raw: String, expected: String) {
        let level = Topic.sanitisedLevel(raw)
        #expect(level == expected)
        #expect(level.map { !$0.utf8.contains(where: { "/+#".utf8.contains($0) }) && $0.utf8.first != UInt8(ascii: "$") } == true)
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
        let config = try GatewayConfig.parse(yaml: """
        gateway: { id: gw }
        mqtt: { host: 127.0.0.1 }
        boards: [ { name: kv, match: { path: /dev/ttyACM0 }, protocol: kv } ]
        """, file: "t")
        let builder = EventBuilder(board: config.boards[0], config: config)
        var topics: [String] = []
        for line in ["\u{35D}9=:", "$\u{35D}=1"] {
            guard case .events(let events) = builder.outcome(for: line, receivedAt: .now) else {
                Issue.record("'\(line)' not decoded")
                continue
            }
            topics += events.map(\.topic)
        }
        #expect(topics.map { Array($0.utf8) } == ["wiregate/gw/kv/\u{35D}9", "wiregate/gw/kv/_\u{35D}"].map { Array($0.utf8) })
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
