import Foundation
import Logging
import Synchronization
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// A board unplugged and plugged back on the same node before its reader looked: the reader
/// goes on (the hotplug cycles found it ending instead, and the gateway with it).
@Suite struct BoardReplugTests {
    @Test func aReplugOnTheSameNodeStartsANewSessionAndNeverEndsTheReader() async throws {
        let board = try SimulatedBoard()
        let state = try makeTemporaryDirectory("replug")
        let config = try GatewayConfig.parse(
            yaml: GatewayHarness.yaml(
                port: 1883,
                boards: "  - { name: hall, match: { serial: A1B2C3 }, protocol: kv, settle: 0s }"),
            file: "replug.yaml")
        let journal = try Journal(directory: state, settings: config.journal, logger: Logger(label: "replug"))
        let opens = Mutex(0)
        let reader = BoardReader(
            board: config.boards[0], config: config, outbox: journal, logger: Logger(label: "replug")
        ) {
            online, _ in
            if online { opens.withLock { $0 += 1 } }
        }
        let running = Task { await reader.run() }
        reader.attach(node: board.path)
        #expect(await eventually { opens.withLock { $0 } == 1 })
        for round in 2...20 {
            // Back to back: the reader's node-change waiter wakes on the first, the node is the same again.
            reader.detach()
            reader.attach(node: board.path)
            #expect(await eventually { opens.withLock { $0 } >= round }, "round \(round)")
        }
        #expect(await eventually(timeout: .seconds(2)) { reader.counters.opens >= 20 })
        running.cancel()
        await running.value
        await journal.close()
    }
}
