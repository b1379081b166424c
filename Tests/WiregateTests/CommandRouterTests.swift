import Foundation
import Logging
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// The router between MQTT and the boards, without a broker: a real pty board behind a running
/// reader, a real journal, and messages handed in as the MQTT sink hands them.
@Suite struct CommandRouterTests {
    static let logger = Logger(label: "router-test")

    static func config(sirenPath: String, adopt: Bool = false) throws -> GatewayConfig {
        try GatewayConfig.parse(
            yaml: GatewayHarness.yaml(
                port: 1883, gatewayID: "house",
                boards: """
                      - { name: siren, match: { path: \(sirenPath) }, protocol: kv, settle: 0s, commands: [ "SIREN=ON", "LED=*" ] }
                      - { name: ms, match: { path: /nonexistent/ms }, protocol: mysensors, commands: [ "1;1;1;0;2;*" ] }
                    """) + (adopt ? "\nunknown_boards: adopt\ndefaults: { protocol: mysensors }\n" : ""),
            file: "router.yaml")
    }

    /// The boards of `config` with their readers (not running), appending to a real journal in `state`.
    static func directory(_ config: GatewayConfig, journalIn state: String) throws -> BoardDirectory {
        let journal = try Journal(directory: state, settings: config.journal, logger: logger)
        let directory = BoardDirectory(boards: config.boards.map(\.name))
        for entry in config.boards {
            directory.add(
                BoardReader(board: entry, config: config, outbox: journal, logger: logger) { online, node in
                    directory.report(entry.name, online: online, node: node)
                })
        }
        return directory
    }

    /// Runs `body` while `readers` run, then stops them and waits until their ports are closed,
    /// whatever `body` does: a reader left running would reopen its pty's path once the number is
    /// another test's board.
    static func whileRunning(_ readers: [BoardReader], _ body: () async throws -> Void) async throws {
        let running = Task {
            await withTaskGroup(of: Void.self) { group in
                for reader in readers { group.addTask { await reader.run() } }
            }
        }
        do {
            try await body()
        } catch {
            running.cancel()
            await running.value
            throw error
        }
        running.cancel()
        await running.value
    }

    @Test func theFiltersCoverEveryBoardOnceAndAdoptedOnesByAWildcard() throws {
        let own = CommandRouter(
            config: try Self.config(sirenPath: "/dev/null"), boards: BoardDirectory(boards: []), logger: Self.logger)
        #expect(
            own.filters == ["wiregate/house/siren/set", "wiregate/house/ms/set", "wiregate/house/ms/mysensors-in/#"])
        // With adoption, a `+` level covers every board: no board's filter again (a command delivered twice).
        let adopting = CommandRouter(
            config: try Self.config(sirenPath: "/dev/null", adopt: true), boards: BoardDirectory(boards: []),
            logger: Self.logger)
        #expect(adopting.filters == ["wiregate/house/+/set", "wiregate/house/+/mysensors-in/#"])
    }

    @Test func onlyAllowedLinesReachTheBoardAndEveryRefusalIsCounted() async throws {
        let board = try SimulatedBoard()
        let config = try Self.config(sirenPath: board.path)
        let state = try makeTemporaryDirectory("router")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let directory = try Self.directory(config, journalIn: state)
        let siren = try #require(directory["siren"])
        try await Self.whileRunning([siren]) {
            #expect(await eventually { directory.isOnline("siren") })
            let router = CommandRouter(config: config, boards: directory, logger: Self.logger)
            func send(_ topic: String, _ payload: String, retained: Bool = false) async {
                await router.handle(topic: topic, payload: Array(payload.utf8), retained: retained)
            }
            await send("wiregate/house/siren/set", "SIREN=ON")
            await send("wiregate/house/siren/set", "LED=7")
            await send("wiregate/house/siren/set", "REBOOT")  // not listed
            await send("wiregate/house/siren/set", "SIREN=ON\nREBOOT")  // a second line smuggled in
            await send("wiregate/house/siren/set", "LED=1;SIREN=OFF")  // a pattern's value carrying a command
            await send("wiregate/house/siren/set", "SIREN=ON", retained: true)  // a command is never a state
            await router.handle(topic: "wiregate/house/siren/set", payload: [0xFF, 0xFE], retained: false)
            await send("wiregate/house/garage/set", "SIREN=ON")  // no such board
            await send("wiregate/other-house/siren/set", "SIREN=ON")  // another gateway's tree
            await send("wiregate/house/siren/mysensors-in/1/1/1/0/2", "1")  // not a kv board's topic
            // Allowed by the protocol and the list, but the board is offline: passed on, not written.
            await send("wiregate/house/ms/mysensors-in/1/1/1/0/2", "1")

            var written = await board.receivedLines(within: .seconds(5)) { $0.count >= 2 }
            written += await board.receivedLines(within: .milliseconds(300)) { _ in false }
            let counters = router.counters
            #expect(written == ["SIREN=ON", "LED=7"], "router \(counters), board \(siren.counters)")
            #expect(counters.refused == ["siren": 5])
            #expect(counters.retained == 1)
            #expect(counters.unroutable == 2)
            #expect(siren.counters.commandsWritten == 2)
            #expect(directory["ms"]?.counters.commandsNotWritten == 1)
            #expect(directory["ms"]?.counters.commandsWritten == 0)
        }
    }

    /// A board that stops reading (a hung USB-serial chip) fills the port's buffers; its next write
    /// waits at most `BoardReader.commandWriteTimeout`, is counted as not written, and the siren
    /// on another board is written the moment its command comes.
    @Test func aBoardThatStopsReadingHoldsUpTheNextCommandOnlyForTheWriteTimeout() async throws {
        let stuck = try SimulatedBoard()  // never read
        let siren = try SimulatedBoard()
        let config = try GatewayConfig.parse(
            yaml: GatewayHarness.yaml(
                port: 1883, gatewayID: "house",
                boards: """
                      - { name: stuck, match: { path: \(stuck.path) }, protocol: kv, settle: 0s, commands: [ "LED=*" ] }
                      - { name: siren, match: { path: \(siren.path) }, protocol: kv, settle: 0s, commands: [ "SIREN=ON" ] }
                    """), file: "stuck.yaml")
        let state = try makeTemporaryDirectory("router-stuck")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let directory = try Self.directory(config, journalIn: state)
        try await Self.whileRunning(directory.all) {
            #expect(await eventually { directory.isOnline("stuck") && directory.isOnline("siren") })
            let router = CommandRouter(config: config, boards: directory, logger: Self.logger)
            let line = "LED=" + String(repeating: "7", count: 1000)
            var sent = 0
            while directory["stuck"]!.counters.commandsNotWritten == 0, sent < 5000 {
                await router.handle(topic: "wiregate/house/stuck/set", payload: Array(line.utf8), retained: false)
                sent += 1
            }
            #expect(directory["stuck"]!.counters.commandsNotWritten == 1, "\(sent) commands sent, all taken")
            #expect(directory["stuck"]!.counters.commandsWritten == sent - 1)
            let start = ContinuousClock.now
            await router.handle(topic: "wiregate/house/siren/set", payload: Array("SIREN=ON".utf8), retained: false)
            #expect(ContinuousClock.now - start < BoardReader.commandWriteTimeout)
            #expect(await siren.receivedLines(within: .seconds(5)) { !$0.isEmpty } == ["SIREN=ON"])
        }
    }
}
