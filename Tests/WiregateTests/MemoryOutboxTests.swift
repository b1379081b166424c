import Foundation
import Logging
import Testing
import Wiregate
import WiregateCore

@Suite struct MemoryOutboxTests {
    func event(_ name: String, _ eventClass: EventClass) -> Event {
        Event(board: "b", topic: "t/\(name)", subtopic: name, payload: name, eventClass: eventClass, receivedAt: Date())
    }

    @Test func criticalFirstThenOldestFirst() async {
        let outbox = MemoryOutbox(capacity: 10, logger: Logger(label: "test"))
        await outbox.append([event("t1", .telemetry), event("c1", .critical), event("t2", .telemetry), event("c2", .critical)])
        var order: [String] = []
        for _ in 0..<4 { order.append(await outbox.next()!.payload) }
        #expect(order == ["c1", "c2", "t1", "t2"])
    }

    @Test func fullQueueDropsOldestTelemetryThenCritical() async {
        let outbox = MemoryOutbox(capacity: 3, logger: Logger(label: "test"))
        await outbox.append([event("c1", .critical), event("t1", .telemetry), event("t2", .telemetry)])
        await outbox.append([event("c2", .critical)])          // drops t1
        #expect(await outbox.dropped == [.telemetry: 1, .critical: 0])
        await outbox.append([event("c3", .critical)])          // drops t2
        await outbox.append([event("c4", .critical)])          // nothing but critical left: drops c1
        #expect(await outbox.dropped == [.telemetry: 2, .critical: 1])
        var left: [String] = []
        for _ in 0..<3 { left.append(await outbox.next()!.payload) }
        #expect(left == ["c2", "c3", "c4"])
    }

    @Test func putBackGoesFirstAndNextWaitsUntilCancelled() async throws {
        let outbox = MemoryOutbox(capacity: 10, logger: Logger(label: "test"))
        await outbox.append([event("t1", .telemetry), event("t2", .telemetry)])
        let first = await outbox.next()!
        await outbox.putBack(first)
        #expect(await outbox.next()?.payload == "t1")
        _ = await outbox.next()
        let waiting = Task { await outbox.next() }
        try await Task.sleep(for: .milliseconds(50))
        await outbox.append([event("late", .critical)])
        #expect(await waiting.value?.payload == "late")
        let cancelled = Task { await outbox.next() }
        try await Task.sleep(for: .milliseconds(50))
        cancelled.cancel()
        #expect(await cancelled.value == nil)
    }
}
