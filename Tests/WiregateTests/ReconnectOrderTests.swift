import Dispatch
import Foundation
import Synchronization
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// Found by the seeded fault campaign (seed 534565704: "b2/door: 1953 after 1958" at the
/// subscriber, nothing lost): after a reconnect, an event published the moment the client said
/// `connected` overtook older ones that had been in flight across the loss. libmosquitto 2.0.11
/// calls the CONNACK callback before it sends those again (handle_connack.c), and writes a message
/// published meanwhile at once. The client now takes new messages only once that read has returned
/// (its publish gate); this test holds the network thread at that moment, as a busy Pi does.
@Suite struct ReconnectOrderTests {
    /// Lets the first CONNACK callback through and holds the second until released.
    final class CONNACKHold: Sendable {
        private let calls = Atomic<Int>(0)
        private let holding = Atomic<Bool>(false)
        private let release = DispatchSemaphore(value: 0)

        var isHolding: Bool { holding.load(ordering: .acquiring) }

        /// On the network thread, inside the CONNACK callback.
        func pass() {
            guard calls.add(1, ordering: .relaxed).newValue == 2 else { return }
            holding.store(true, ordering: .releasing)
            // Bounded: a test that fails must not leave the network thread stuck for good.
            _ = release.wait(timeout: .now() + .seconds(30))
            holding.store(false, ordering: .releasing)
        }

        func letGo() { release.signal() }
    }

    @Test func messagesInFlightAcrossALossGoOutBeforeNewOnes() async throws {
        let broker = try MosquittoBroker()
        let yaml = GatewayHarness.yaml(
            port: broker.port, gatewayID: "order",
            boards: "  - { name: idle, match: { path: /dev/null }, protocol: raw }")
        var options = MosquittoClient.Options(
            config: try GatewayConfig.parse(yaml: yaml, file: "order.yaml"), password: nil)
        options.will = nil
        // The hold lasts as long as starting a subscriber: the broker must not drop the client meanwhile.
        options.keepalive = 60
        let hold = CONNACKHold()
        options.afterCONNACKForTests = { hold.pass() }
        let client = try MosquittoClient(options: options)
        client.start()
        // Whatever fails below, the network thread is let go and the client stopped.
        defer {
            hold.letGo()
            Task { await client.shutdown() }
        }
        let events = client.events
        /// The next event `wanted` reports, within 15 s.
        func next(_ wanted: @escaping @Sendable (MQTTClientEvent) -> Bool) async -> Bool {
            await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    for await event in events where wanted(event) { return true }
                    return false
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(15))
                    return false
                }
                defer { group.cancelAll() }
                return await group.next() ?? false
            }
        }
        #expect(await next { if case .connected = $0 { true } else { false } })

        // In flight across the loss: sent to a frozen broker, never acknowledged.
        broker.pause()
        for payload in ["1", "2"] {
            guard case .queued = client.publish(topic: "order/door", payload: payload) else {
                Issue.record("not queued while connected")
                return
            }
        }
        try await Task.sleep(for: .milliseconds(200))
        broker.kill()
        #expect(await next { if case .connectionLost = $0 { true } else { false } })
        #expect(client.publish(topic: "order/door", payload: "lost") == .notConnected, "taken with no connection")

        try broker.start()
        #expect(await eventually { hold.isHolding }, "the client did not reconnect")
        let subscriber = try Subscriber(port: broker.port, filter: "order/#")
        defer { subscriber.stop() }
        // The CONNACK is in, what was in flight not yet sent again: a new message must wait.
        #expect(
            client.publish(topic: "order/door", payload: "3") == .notConnected,
            "taken before the in-flight messages went again")
        #expect(!client.isConnected)
        hold.letGo()
        #expect(await next { if case .connected = $0 { true } else { false } })
        #expect(client.isConnected)
        if case .queued = client.publish(topic: "order/door", payload: "3") {
        } else {
            Issue.record("not queued once connected")
        }

        #expect(await subscriber.waitAsync(timeout: .seconds(10)) { $0.count >= 3 })
        try await Task.sleep(for: .milliseconds(200))
        #expect(subscriber.messages.map(\.payload) == ["1", "2", "3"])
    }
}
