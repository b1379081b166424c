import Foundation
import Testing

@testable import WiregateCore

@Suite struct EventBuilderTests {
    let config = try! GatewayConfig.parse(yaml: ConfigTests.valid, file: "t")

    @Test func classifiesAndSanitises() throws {
        let builder = EventBuilder(board: config.boards[0], config: config)
        let outcome = builder.outcome(for: "door=open;a/#=1;$SYS=2;+=3;../x=4;status=5", receivedAt: Date())
        guard case .events(let events) = outcome else { Issue.record("\(outcome)"); return }
        #expect(
            events.map(\.topic) == [
                "wiregate/house-1/front-door/door", "wiregate/house-1/front-door/a__",
                "wiregate/house-1/front-door/_SYS",
                "wiregate/house-1/front-door/_", "wiregate/house-1/front-door/.._x",
                "wiregate/house-1/front-door/_status"
            ])
        #expect(events.map(\.eventClass) == [.critical] + Array(repeating: .telemetry, count: 5))
        for event in events {
            #expect(event.topic.hasPrefix("wiregate/house-1/front-door/"))
            #expect(!event.topic.contains("+") && !event.topic.contains("#") && !event.topic.contains("//"))
        }
    }

    @Test func blankAnnotationAndMalformed() {
        let builder = EventBuilder(board: config.boards[0], config: config)
        #expect(builder.outcome(for: "  ", receivedAt: Date()) == .blank)
        #expect(
            builder.outcome(for: "#hello id=door fw=1.4", receivedAt: Date()) == .annotation("#hello id=door fw=1.4"))
        guard case .malformed = builder.outcome(for: "door", receivedAt: Date()) else {
            Issue.record("not malformed"); return
        }
    }
}
