import Testing

@testable import WiregateCore

/// Which class an event gets from a board's `classes:` mapping: the rule behind "an intrusion
/// never waits behind telemetry" starts here.
@Suite struct ClassRulesTests {
    static let rules = ClassRules([
        ("motion*", .critical), ("env/*", .telemetry), ("door", .critical), ("*", .telemetry), ("smoke", .critical)
    ])

    @Test(arguments: [
        ("door", EventClass.critical),  // exact
        ("smoke", .critical),  // exact, though written after "*"
        ("motion", .critical),  // pattern
        ("motion/hall", .critical),  // a pattern's `*` spans levels
        ("env/temperature", .telemetry),
        ("doorbell", .telemetry),  // an exact key is not a prefix
        ("battery", .telemetry)  // "*"
    ])
    func exactKeysWinThenPatternsInTheOrderWritten(subtopic: String, expected: EventClass) {
        #expect(Self.rules.eventClass(forSubtopic: subtopic) == expected)
    }

    @Test func patternsAreTriedInTheOrderWritten() {
        let first = ClassRules([("door*", .telemetry), ("*", .critical)])
        #expect(first.classify("door-chime") == .telemetry)
        #expect(first.classify("window") == .critical)
        // Without a rule that matches: no class (telemetry for the event, see `eventClass`).
        #expect(ClassRules([("door", .critical)]).classify("window") == nil)
        #expect(ClassRules().eventClass(forSubtopic: "door") == .telemetry)
    }
}
