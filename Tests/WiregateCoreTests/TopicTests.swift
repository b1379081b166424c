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
    ])
    func hostileLevelsBecomeOneOrdinaryLevel(raw: String, expected: String) {
        let level = Topic.sanitisedLevel(raw)
        #expect(level == expected)
        #expect(level.map { !$0.contains("/") && !$0.contains("+") && !$0.contains("#") && !$0.hasPrefix("$") } == true)
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
