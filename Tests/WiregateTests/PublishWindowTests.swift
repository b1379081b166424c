import Foundation
import Testing
import WiregateCore

@testable import Wiregate

/// The window's shares: telemetry never fills what libmosquitto keeps on the wire, so an alarm
/// handed over is never queued inside libmosquitto behind telemetry (the never-lost issue, 16).
@Suite struct PublishWindowTests {
    static func event(_ seq: Int64, _ eventClass: EventClass) -> JournaledEvent {
        JournaledEvent(
            seq: seq,
            event: Event(
                board: "b", topic: "t/\(seq)", subtopic: "\(seq)", payload: "1", eventClass: eventClass,
                receivedAt: .now), clockSynced: true)
    }

    @Test func telemetryLeavesRoomOnTheWireForAlarms() async {
        let window = PublishWindow(limit: 256)
        // A default mosquitto says receive maximum 20: 20 on the wire, the rest queued in libmosquitto.
        window.setConnected(true, receiveMaximum: 20)
        #expect(window.telemetryLimit == 18)
        var mid: Int32 = 0
        var room = await window.waitForRoom(for: .telemetry)
        #expect(room == 18)
        for seq in 1...Int64(room) {
            mid += 1
            _ = window.publish(Self.event(seq, .telemetry)) { [mid] in .queued(mid: mid) }
        }
        // Telemetry's share is full; an alarm still has places at once, without waiting for a PUBACK.
        room = await window.waitForRoom(for: .critical)
        #expect(room == 256 - 18)
        let waiting = Task { await window.waitForRoom(for: .telemetry) }
        try? await Task.sleep(for: .milliseconds(50))
        // A quarter of the share answered: telemetry goes again.
        for answered in Int32(1)...4 { window.answered(mid: answered, reasonCode: 0) }
        #expect(await waiting.value == 4)
        window.close()
    }

    @Test func withoutAReceiveMaximumTheWindowKeepsAnEighthForAlarms() {
        let window = PublishWindow(limit: 256)
        window.setConnected(true, receiveMaximum: 65535)
        #expect(window.telemetryLimit == 224)
    }
}
