import Foundation
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// The journal uploaded to the receiving Django app (deploy/django), served by gunicorn over
/// the private PostgreSQL of scripts/test.sh: every event exactly once, whatever happens.
@Suite(.serialized) struct BackendSyncTests {
    /// Sends `count` numbered lines as fast as the pty takes them.
    /// Waits out a full pty without holding a thread of the shared pool: the in-process gateway
    /// that reads it needs one (a reader waiting for a burst's commit let the pty fill, and two
    /// tests spinning in writes starved the pool: the whole run hung).
    func stream(_ board: SimulatedBoard, _ range: Range<Int>) async throws {
        for n in range {
            while !board.send("temperature=\(n)") { try await Task.sleep(for: .milliseconds(2)) }
        }
    }

    func harness(_ broker: MosquittoBroker, _ board: SimulatedBoard, _ backend: DjangoBackend, extra: String = "")
        throws -> GatewayHarness
    {
        try GatewayHarness(
            yaml: GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s }
                    """, backend: "\(backend.configKeys), timeout: 2s, retry_max: 1s\(extra)"),
            backendToken: backend.token)
    }

    /// Every sequence number the journal handed out is stored, once.
    func expectExactlyOnce(
        _ backend: DjangoBackend, _ harness: GatewayHarness, atLeast: Int, timeout: Duration = .seconds(60)
    ) async throws {
        // Polled twice a second: each look is a psql process, and the machine has two cores.
        let deadline = ContinuousClock.now + timeout
        var complete = false
        while !complete && ContinuousClock.now < deadline {
            let last = await harness.gateway.journal.lastSeq
            complete = last >= atLeast && (try? backend.count()) == Int(last)
            if !complete { try await Task.sleep(for: .milliseconds(500)) }
        }
        let stored = try backend.storedSequences()
        let last = await harness.gateway.journal.lastSeq
        #expect(complete, "stored \(stored.count) of \(last)")
        #expect(stored == Array(1...max(1, last)), "gaps or repeats in \(stored.count) rows")
    }

    @Test func tenThousandEventsArriveExactlyOnce() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let backend = try DjangoBackend(faults: ["plan": [String]()])  // no fault: only counting
        let harness = try harness(broker, board, backend)
        #expect(await eventually { harness.gateway.directory.isOnline("sim") })
        board.send("primer=1")
        try await stream(board, 0..<10_000)
        try await expectExactlyOnce(backend, harness, atLeast: 10_000)
        // The first answer said Accept-Encoding: gzip; the bodies after it were compressed.
        #expect(
            backend.gzipRequests > 0 && backend.gzipRequests == backend.requests - 1,
            "\(backend.gzipRequests) of \(backend.requests)")
        await harness.stop()
    }

    /// backend.ca_file: HTTPS to a backend whose certificate the house CA signed (made by
    /// deploy/mosquitto/make-certs.sh), and nothing at all to one signed by another CA.
    @Test func httpsTrustsOnlyTheConfiguredCA() async throws {
        let house = try HouseBroker.makeCertificates()
        let file = { (name: String) in house.appendingPathComponent(name).path }
        let backend = try DjangoBackend(tls: (file("server.crt"), file("server.key")))
        #expect(backend.url.hasPrefix("https://"))
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let trusting = try harness(broker, board, backend, extra: ", ca_file: \(file("ca.crt"))")
        #expect(await eventually { trusting.gateway.directory.isOnline("sim") })
        board.send("primer=1")
        try await stream(board, 0..<500)
        try await expectExactlyOnce(backend, trusting, atLeast: 500)
        await trusting.stop()

        let otherCA = try HouseBroker.makeCertificates().appendingPathComponent("ca.crt").path
        let stored = try backend.count()
        let otherBoard = try SimulatedBoard()
        let doubting = try harness(broker, otherBoard, backend, extra: ", ca_file: \(otherCA)")
        #expect(await eventually { doubting.gateway.directory.isOnline("sim") })
        otherBoard.send("primer=1")
        try await stream(otherBoard, 0..<50)
        #expect(await eventually { await doubting.gateway.journal.lastSeq > 40 })
        try await Task.sleep(for: .seconds(3))
        #expect(doubting.gateway.backend?.counters.uploaded == 0)
        #expect(doubting.gateway.backend?.counters.reachable == false)
        #expect(try backend.count() == stored, "an untrusted backend got events")
        await doubting.stop()
    }

    @Test func serverStoppedMidStreamThenBack() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let backend = try DjangoBackend()
        let harness = try harness(broker, board, backend)
        #expect(await eventually { harness.gateway.directory.isOnline("sim") })
        board.send("primer=1")
        try await stream(board, 0..<1000)
        #expect(
            await eventually(timeout: .seconds(30)) {
                try? await Task.sleep(for: .milliseconds(200)); return (try? backend.count()) ?? 0 > 0
            })
        backend.stop()
        try await stream(board, 1000..<3000)
        // Longer than the request timeout: AsyncHTTPClient keeps reconnecting within a request's deadline.
        try await Task.sleep(for: .seconds(4))
        let directory = harness.gateway.journal.directory
        #expect(try BackendSink.State.read(directory: directory).reachable == false)
        try backend.start()
        try await stream(board, 3000..<4000)
        try await expectExactlyOnce(backend, harness, atLeast: 4000)
        // What waited for the backend says so, and `status` sees it reachable again.
        #expect(try backend.count(where: "replayed") > 0)
        #expect(try BackendSink.State.read(directory: directory).reachable == true)
        await harness.stop()
    }

    @Test func killedMidUploadAndRestartedStoresNothingTwice() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let backend = try DjangoBackend()
        let state = try makeTemporaryDirectory("backend")
        let config = GatewayHarness.yaml(
            port: broker.port,
            boards: """
                  - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s }
                """, stateDirectory: state, journal: "sync: full, commit_window_ms: 0",
            backend: "\(backend.configKeys), timeout: 5s, retry_max: 1s, batch_size: 50, max_rate: 500")
        try config.write(toFile: state + "/wiregate.yaml", atomically: true, encoding: .utf8)
        var daemon = try ChildProcess(
            CommandLineTests.binary, ["run", "--config", state + "/wiregate.yaml"],
            environment: ["WIREGATE_BACKEND_TOKEN": backend.token])
        #expect(await eventually { (try? DaemonState.read(stateDirectory: state))?.boards["sim"] == true })
        board.send("primer=1")
        try await stream(board, 0..<2000)
        // Killed while uploading (max_rate keeps it busy for seconds): the cursor on disk is behind.
        #expect(
            await eventually(timeout: .seconds(30)) {
                try? await Task.sleep(for: .milliseconds(200)); return (try? backend.count()) ?? 0 > 200
            })
        daemon.send(SIGKILL)
        _ = daemon.waitForExit()
        daemon = try ChildProcess(
            CommandLineTests.binary, ["run", "--config", state + "/wiregate.yaml"],
            environment: ["WIREGATE_BACKEND_TOKEN": backend.token])
        let last = try JournalStatus.read(stateDirectory: state).lastSeq
        #expect(
            await eventually(timeout: .seconds(60)) {
                try? await Task.sleep(for: .milliseconds(300)); return (try? backend.count()) == Int(last)
            })
        #expect(try backend.storedSequences() == Array(1...last))
        daemon.terminate()
    }

    @Test func errorsRateLimitsAndHangsAreRetriedWithoutDuplicates() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        // 500, then 429 with Retry-After, then an answer that comes after the gateway's timeout
        // (the server stored the batch: the gateway sends it again), then a 503.
        let backend = try DjangoBackend(faults: ["plan": ["500", "429:1", "hang:3", "503"]])
        let harness = try harness(broker, board, backend, extra: ", batch_size: 100")
        #expect(await eventually { harness.gateway.directory.isOnline("sim") })
        board.send("primer=1")
        try await stream(board, 0..<500)
        try await expectExactlyOnce(backend, harness, atLeast: 500)
        #expect(harness.gateway.backend!.counters.retries >= 4)
        #expect(backend.requests >= 5 + 4)
        await harness.stop()
    }

    /// The regression: a redirect (followed, the POST became a GET answered 200), a login page
    /// answered 200 and a rotated token (401) either marked events uploaded that were never
    /// stored, or quarantined the whole stream for good. Now none of them stores or quarantines
    /// anything: the sink says it is set up wrong and tries again; a 413 halves the batches.
    @Test func aLyingOrMisconfiguredBackendNeverCostsAnEvent() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let backend = try DjangoBackend(faults: ["plan": ["302", "login", "401", "404", "413", "ok"]])
        let harness = try harness(broker, board, backend, extra: ", batch_size: 100")
        #expect(await eventually { harness.gateway.directory.isOnline("sim") })
        board.send("primer=1")
        try await stream(board, 0..<300)
        try await expectExactlyOnce(backend, harness, atLeast: 300)
        let counters = harness.gateway.backend!.counters
        #expect(counters.misconfigured == 4, "\(counters)")
        #expect(counters.quarantined == 0)
        #expect(await harness.gateway.journal.quarantinedCount(sink: "backend") == 0)
        await harness.stop()
    }

    @Test func aRefusedBatchIsQuarantinedAndTheRestArrives() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let backend = try DjangoBackend(faults: ["plan": [String](), "reject_seq": 150])
        let harness = try harness(broker, board, backend, extra: ", batch_size: 100")
        #expect(await eventually { harness.gateway.directory.isOnline("sim") })
        board.send("primer=1")
        try await stream(board, 0..<400)
        let journal = harness.gateway.journal
        #expect(await eventually(timeout: .seconds(30)) { await journal.quarantinedCount(sink: "backend") > 0 })
        let quarantined = await journal.quarantinedCount(sink: "backend")
        #expect(
            await eventually(timeout: .seconds(30)) {
                try? await Task.sleep(for: .milliseconds(300))
                let last = await journal.lastSeq
                return (try? backend.count()) == Int(last) - quarantined
            })
        let stored = Set(try backend.storedSequences())
        #expect(!stored.contains(150))
        #expect(stored.count + quarantined == Int(await journal.lastSeq))
        // Halved until the bad event was alone: its 99 neighbours arrived.
        #expect(quarantined == 1)
        #expect(harness.gateway.backend!.counters.quarantined == quarantined)
        #expect(
            try JournalStatus.read(stateDirectory: harness.gateway.journal.directory).quarantined["backend"]
                == quarantined)
        await harness.stop()
    }

    @Test func aBacklogDrainsNoFasterThanMaxRate() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let backend = try DjangoBackend()
        backend.stop()
        let harness = try harness(broker, board, backend, extra: ", batch_size: 50, max_rate: 200")
        #expect(await eventually { harness.gateway.directory.isOnline("sim") })
        board.send("primer=1")
        try await stream(board, 0..<800)
        #expect(await eventually { await harness.gateway.journal.lastSeq >= 800 })
        try backend.start()
        let started = ContinuousClock.now
        try await expectExactlyOnce(backend, harness, atLeast: 800)
        // 800 events at 200/s: about 4 s (the first second's worth may go at once).
        #expect(ContinuousClock.now - started >= .seconds(3), "\(ContinuousClock.now - started)")
        await harness.stop()
    }
}
