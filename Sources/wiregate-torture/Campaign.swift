import Foundation
import Glibc
import Synchronization
import Wiregate
import WiregateCore
import WiregateTestKit

/// One run of the campaign: the gateway as a process with its real config, a persistent broker,
/// the Django app, pty boards streaming numbered and hostile lines, and the faults of the
/// schedule, one episode at a time. What each fault may legitimately cost is written down when it
/// is applied (`excuse`), so that everything else must arrive.
final class Campaign: Sendable {
    let seed: UInt64
    let duration: Duration
    let binary: String
    let boardCount: Int
    let memoryBound: Int
    let gatewayID: String
    let directory: String
    let stateDirectory: String
    let configPath: String
    let logPath: String
    /// Whether the state directory is a small tmpfs of its own, so that it can be filled.
    let canFillDisk: Bool
    let schedule: FaultSchedule

    /// The commit window of the journal (the default): telemetry younger than this is in memory only.
    static let commitWindow = Duration.seconds(2)
    /// How long a line may sit unread in a port before the reader takes it: what a stop may cost.
    static let readingLag = Duration.milliseconds(300)
    /// How long a commit may take to reach the file once due, on two busy cores (a debug build,
    /// the broker, Django and PostgreSQL beside it).
    static let commitLag = Duration.milliseconds(700)

    private let broker: MosquittoBroker
    private let subscriber: Subscriber
    private let backend: DjangoBackend
    private let state = Mutex(State())
    /// Keep the directory (the gateway's log, journal and config) for a post-mortem.
    let keep = Mutex(false)
    private let tornDown = Mutex(false)

    struct State {
        var gateway: ChildProcess?
        /// Set before any signal to the gateway, cleared when it runs again: lines written meanwhile are not promised.
        var gatewayUp = false
        /// The boards the running gateway's status.json says it reads.
        var online: Set<Int> = []
        /// Boards plugged in again that the gateway has not yet seen go: until status.json says
        /// offline, "online" is about the old port.
        var replugged: Set<Int> = []
        var boards: [SimulatedBoard?] = []
        var written: [(key: LineKey, at: ContinuousClock.Instant, promised: Bool)] = []
        var next: [LineKey: Int] = [:]
        var hostile = 0
        var excused: [Destination: Set<LineKey>] = [:]
        /// Not yet at the subscriber when the broker was killed: excused at MQTT if the backend has them.
        var lostByBroker: Set<LineKey> = []
        /// Not yet delivered when the journal was corrupted: excused if the gateway moved it aside.
        var lostWithJournal: [Destination: Set<LineKey>] = [:]
        var peakPrivateDirty = 0
        var peakRSS = 0
        var problems: [String] = []
        var faultsApplied = 0
        var writing = true
        var start = ContinuousClock.now
    }

    init(seed: UInt64, duration: Duration, binary: String, boards: Int, memoryBound: Int) throws {
        self.seed = seed
        self.duration = duration
        self.binary = binary
        boardCount = boards
        self.memoryBound = memoryBound
        gatewayID = "torture-\(seed % 100_000)-\(getpid())"
        directory = try makeTemporaryDirectory("torture")
        stateDirectory = directory + "/state"
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        // A tmpfs of its own (we are root in the test environment): filling it fills nothing else.
        canFillDisk =
            (try? ChildProcess.run(
                "/usr/bin/mount", ["-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs", stateDirectory]
            ).status) == 0
        configPath = directory + "/wiregate.yaml"
        logPath = directory + "/gateway.log"
        schedule = FaultSchedule(seed: seed, duration: duration, boards: boards, diskFull: canFillDisk)
        broker = try MosquittoBroker(persistent: true, extraConfig: "max_queued_messages 0")
        // Everything, not only the gateway's tree: a hostile line that escaped would show up anywhere.
        subscriber = try Subscriber(port: broker.port, filter: "#", persistentID: "torture-check-\(getpid())")
        backend = try DjangoBackend(faults: ["plan": [String]()], gateway: gatewayID)
        var boards: [SimulatedBoard?] = []
        for index in 0..<boardCount { boards.append(try SimulatedBoard(link: directory + "/b\(index)")) }
        state.withLock { $0.boards = boards }
        let boardLines = (0..<boardCount).map {
            "  - { name: b\($0), match: { path: \(directory)/b\($0) }, protocol: kv, settle: 0s, classes: { door: critical } }"
        }.joined(separator: "\n")
        let yaml = GatewayHarness.yaml(
            port: broker.port, gatewayID: gatewayID, boards: boardLines, stateDirectory: stateDirectory,
            backend: "\(backend.configKeys), timeout: 2s, retry_max: 1s")
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    deinit { tearDown() }

    /// Stops every process this campaign started (by PID) and removes what it made. From deinit,
    /// or from a SIGINT/SIGTERM handler (a Ctrl-C must not leave a broker, gunicorn or a tmpfs).
    func tearDown() {
        guard
            !tornDown.withLock({ done in
                defer { done = true }; return done
            })
        else { return }
        state.withLock { $0.gateway?.terminate() }
        subscriber.stop()
        broker.stop()
        backend.stop()
        if keep.withLock({ $0 }) {
            _ = try? ChildProcess.run("/bin/cp", ["-a", stateDirectory, directory + "/state-kept"])
        }
        if canFillDisk { _ = try? ChildProcess.run("/usr/bin/umount", ["-l", stateDirectory]) }
        if !keep.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: directory) }
        try? FileManager.default.removeItem(atPath: Journal.memoryFallbackDirectory(gatewayID: gatewayID))
    }

    // MARK: The run

    /// Runs the schedule, waits for the destinations to catch up, and returns the verdict.
    func run(log: @escaping @Sendable (String) -> Void) async throws -> (Verdict, summary: String) {
        let start = ContinuousClock.now
        state.withLock { $0.start = start }
        let stamp = { @Sendable () -> String in (ContinuousClock.now - start).seconds }
        // A binary just built or copied sits in the page cache unwritten, and its pages count as
        // the daemon's private dirty memory until written back (a soak failed on 27 MiB of them).
        sync()
        try startGateway()
        try await waitForBoards(timeout: .seconds(30))
        let watcher = Task.detached { await self.watchStatus() }
        let sampler = Task.detached { await self.sampleMemory() }
        let writer = Task.detached { await self.writeLines() }
        // However this ends (a fault that throws included): the tasks stop, so that deinit runs
        // and stops every process this campaign started.
        defer {
            state.withLock { $0.writing = false }
            watcher.cancel()
            sampler.cancel()
        }
        var random = SeededGenerator(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
        for (index, step) in schedule.steps.enumerated() {
            try await Task.sleep(for: step.pause)
            if let gateway = state.withLock({ $0.gatewayUp ? $0.gateway : nil }), !gateway.isRunning {
                problem("the gateway ended by itself (status \(gateway.waitForExit())) before fault \(index + 1)")
                try startGateway()
            }
            log("[\(stamp())] \(index + 1). \(step.fault)")
            try await apply(step.fault, random: &random)
            state.withLock { $0.faultsApplied += 1 }
        }
        // Everything healed; the boards stop, and the destinations get time to catch up.
        try await Task.sleep(for: .seconds(1))
        state.withLock { $0.writing = false }
        await writer.value
        log("[\(stamp())] schedule done; waiting for the destinations")
        try await waitForDestinations(timeout: .seconds(120))
        log("[\(stamp())] checking")
        await stopGateway(signal: SIGTERM)
        watcher.cancel()
        sampler.cancel()
        return try verdict()
    }

    private func problem(_ text: String) {
        state.withLock { $0.problems.append(text) }
    }

    // MARK: The gateway

    private func startGateway() throws {
        let log = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        defer { close(log) }
        let gateway = try ChildProcess(
            binary, ["run", "--config", configPath], stdout: log, stderr: log,
            environment: [GatewayConfig.tokenEnvironmentVariable: backend.token, "MALLOC_ARENA_MAX": "2"])
        state.withLock {
            $0.gateway = gateway
            $0.gatewayUp = true
            $0.online = []
            // A new process opens every port anew.
            $0.replugged = []
        }
    }

    /// Stops the gateway: lines written from now on are not promised, and those written just
    /// before may still be in the port (SIGTERM) or in memory (SIGKILL: the commit window).
    private func stopGateway(signal: Int32) async {
        let now = ContinuousClock.now
        guard
            let gateway = state.withLock({ state -> ChildProcess? in
                state.gatewayUp = false
                state.online = []
                if signal == SIGKILL {
                    // Critical events are committed as they come, telemetry once per commit window.
                    excuse(
                        &state,
                        both: {
                            $0.at >= now - Self.readingLag - Self.commitLag
                                - ($0.key.critical ? .zero : Self.commitWindow)
                        })
                } else {
                    excuse(&state, both: { $0.at >= now - Self.readingLag })
                }
                return state.gateway
            })
        else { return }
        if signal == SIGTERM {
            // The daemon handles SIGTERM once it runs its services (its status.json names it);
            // before that the default action ends it with 143, which is not what is tested here.
            let deadline = ContinuousClock.now + .seconds(15)
            while gateway.isRunning, ContinuousClock.now < deadline,
                (try? DaemonState.read(stateDirectory: stateDirectory))?.pid != gateway.pid
            {
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        gateway.send(signal)
        let deadline = ContinuousClock.now + .seconds(30)
        while gateway.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if gateway.isRunning {
            problem("the gateway did not stop within 30 s of signal \(signal)")
            gateway.send(SIGKILL)
        }
        let status = gateway.waitForExit()
        if signal == SIGTERM && status != 0 { problem("a SIGTERM'd gateway exited \(status), not 0 (see the log)") }
    }

    private func excuse(
        _ state: inout State, both condition: ((key: LineKey, at: ContinuousClock.Instant, promised: Bool)) -> Bool
    ) {
        let keys = state.written.reversed().prefix { $0.at >= ContinuousClock.now - .seconds(10) }.filter(condition)
            .map(\.key)
        for destination in Destination.allCases { state.excused[destination, default: []].formUnion(keys) }
    }

    private func waitForBoards(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            readStatus()
            if state.withLock({ $0.online.count == boardCount }) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestKitError("the gateway did not open its \(boardCount) boards within \(timeout); see \(logPath)")
    }

    /// Which boards the running gateway reads, from its status.json.
    private func readStatus() {
        let status = try? DaemonState.read(stateDirectory: stateDirectory)
        state.withLock { state in
            guard state.gatewayUp, let gateway = state.gateway, let status, status.pid == gateway.pid,
                status.stoppedAt == nil
            else {
                state.online = []
                return
            }
            for index in state.replugged where status.boards["b\(index)"] != true { state.replugged.remove(index) }
            state.online = Set(
                (0..<boardCount).filter { status.boards["b\($0)"] == true && !state.replugged.contains($0) })
        }
    }

    private func watchStatus() async {
        while !Task.isCancelled {
            readStatus()
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func sampleMemory() async {
        while !Task.isCancelled {
            if let gateway = state.withLock({ $0.gateway }), gateway.isRunning {
                let pid = gateway.pid
                let dirty = ProcessMemory.privateDirty(pid) ?? 0, rss = ProcessMemory.status(pid, "VmHWM") ?? 0
                state.withLock {
                    $0.peakPrivateDirty = max($0.peakPrivateDirty, dirty)
                    $0.peakRSS = max($0.peakRSS, rss)
                }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    // MARK: The boards

    /// Every board a line each 10 ms: one in ten critical, one in twenty hostile.
    private func writeLines() async {
        var random = SeededGenerator(seed: seed ^ 0xD1B5_4A32_D192_ED03)
        while state.withLock({ $0.writing }) {
            for index in 0..<boardCount {
                guard let board = state.withLock({ $0.boards[index] }) else { continue }
                if Int.random(in: 0..<20, using: &random) == 0 {
                    _ = board.writeBytes(HostileLines.draw(using: &random, maxLineLength: 1024))
                    state.withLock { $0.hostile += 1 }
                    continue
                }
                let critical = Int.random(in: 0..<10, using: &random) == 0
                // Promised when written while the gateway reads this board: known before the write.
                // Recorded in the same critical section as the promise, so that a stop's excuse
                // (taken under this lock too) sees every line promised before it.
                let (n, entry) = state.withLock { state -> (Int, Int) in
                    let stream = LineKey(board: index, critical: critical, n: 0)
                    let n = state.next[stream, default: 0]
                    state.next[stream] = n + 1
                    state.written.append(
                        (
                            LineKey(board: index, critical: critical, n: n), ContinuousClock.now,
                            state.gatewayUp && state.online.contains(index)
                        ))
                    return (n, state.written.count - 1)
                }
                if !board.send("\(critical ? "door" : "temperature")=\(n)") {
                    state.withLock { $0.written[entry].promised = false }
                }
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    // MARK: The faults

    private func apply(_ fault: Fault, random: inout SeededGenerator) async throws {
        switch fault {
        case .brokerTerminated(let down):
            broker.stop()
            try await Task.sleep(for: down)
            try broker.start()
        case .brokerKilled(let down):
            broker.kill()
            // What the broker held for the subscriber is gone with it; the gateway had its PUBACKs.
            // Excused at MQTT only if the backend has it (the journal kept it: see `verdict`).
            let arrived = mqttKeys()
            state.withLock { state in
                state.lostByBroker.formUnion(state.written.map(\.key).filter { !arrived.contains($0) })
            }
            try await Task.sleep(for: down)
            try broker.start()
        case .brokerFrozen(let duration):
            broker.pause()
            try await Task.sleep(for: duration)
            broker.resume()
        case .gatewayTerminated(let down):
            await stopGateway(signal: SIGTERM)
            try await Task.sleep(for: down)
            try startGateway()
        case .gatewayKilled(let down):
            await stopGateway(signal: SIGKILL)
            try await Task.sleep(for: down)
            try startGateway()
        case .backendAnswers(let plan):
            try backend.setFaultPlan(plan)
            try await Task.sleep(for: fault.length)
            try backend.setFaultPlan([])
        case .backendDown(let duration):
            backend.stop()
            try await Task.sleep(for: duration)
            try backend.start()
        case .diskFull(let duration):
            let filler = stateDirectory + "/filler"
            fill(filler)
            try await Task.sleep(for: duration)
            unlink(filler)
        case .journalCorrupted(let pages):
            await stopGateway(signal: SIGKILL)
            // A journal found damaged (moved aside) may cost what it held and had not delivered:
            // excused, and only that, and only if the gateway did find it damaged (see `verdict`).
            let mqtt = mqttKeys()
            let backend = lineKeys(try backendArrivals())
            state.withLock { state in
                let written = state.written.map(\.key)
                state.lostWithJournal[.mqtt, default: []].formUnion(written.filter { !mqtt.contains($0) })
                state.lostWithJournal[.backend, default: []].formUnion(written.filter { !backend.contains($0) })
            }
            corrupt(stateDirectory + "/journal.sqlite", pages: pages, random: &random)
            try startGateway()
        case .boardUnplugged(let index, let duration):
            let board = state.withLock { state -> SimulatedBoard? in
                defer { state.boards[index] = nil }
                return state.boards[index]
            }
            // The hang-up throws away what the gateway has not read yet: let it read first.
            try await Task.sleep(for: Self.readingLag)
            board?.hangUp()
            try await Task.sleep(for: duration)
            // Plugged back only once the gateway saw it go (or is not running), so that "online"
            // is never about the old port.
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline, state.withLock({ $0.gatewayUp }),
                (try? DaemonState.read(stateDirectory: stateDirectory))?.boards["b\(index)"] == true
            {
                try await Task.sleep(for: .milliseconds(20))
            }
            let replugged = try SimulatedBoard(link: directory + "/b\(index)")
            state.withLock {
                $0.boards[index] = replugged
                $0.replugged.insert(index)
            }
        }
    }

    /// Fills the file system of the state directory (a tmpfs of its own) to the last block.
    private func fill(_ path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return problem("cannot create \(path): errno \(errno)") }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        var size = chunk.count
        while size > 0 {
            let written = chunk.withUnsafeBytes { write(fd, $0.baseAddress, size) }
            if written < 0 { size /= 2 }
        }
    }

    /// Overwrites `pages` random 4 KiB pages of the file with random bytes (never the header page:
    /// a journal SQLite no longer recognises is a lesser test than one that looks whole).
    private func corrupt(_ path: String, pages: Int, random: inout SeededGenerator) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let size = lseek(fd, 0, SEEK_END)
        let count = Int(size / 4096)
        guard count > 1 else { return }
        for _ in 0..<pages {
            let page = Int.random(in: 1..<count, using: &random)
            let bytes = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, 4096, off_t(page * 4096)) }
        }
    }

    // MARK: The destinations

    private func mqttArrivals() -> [Arrival] {
        subscriber.messages.map { message in
            let seq = message.properties.split(separator: " ").first { $0.hasPrefix("seq:") }.flatMap {
                Int64($0.dropFirst(4))
            }
            return Arrival(topic: message.topic, payload: message.payload, seq: seq, board: nil)
        }
    }

    private func mqttKeys() -> Set<LineKey> { lineKeys(mqttArrivals()) }

    /// The campaign's numbered lines among `arrivals`.
    private func lineKeys(_ arrivals: [Arrival]) -> Set<LineKey> {
        Set(arrivals.compactMap { LineKey(topic: $0.topic, payload: $0.payload, prefix: "wiregate/\(gatewayID)/") })
    }

    private func backendArrivals() throws -> [Arrival] {
        try backend.storedEvents().map {
            Arrival(topic: $0.topic, payload: $0.payload, seq: $0.seq, board: $0.board, eventClass: $0.eventClass)
        }
    }

    /// Waits until every promised line that no fault excused is at both destinations.
    private func waitForDestinations(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (promised, excused) = state.withLock { state in
                var excused = state.excused
                excused[.mqtt, default: []].formUnion(state.lostByBroker)
                for (destination, keys) in state.lostWithJournal { excused[destination, default: []].formUnion(keys) }
                return (Set(state.written.filter(\.promised).map(\.key)), excused)
            }
            let mqttDone = promised.subtracting(excused[.mqtt] ?? []).isSubset(of: mqttKeys())
            let backendKeys = lineKeys(try backendArrivals())
            if mqttDone && promised.subtracting(excused[.backend] ?? []).isSubset(of: backendKeys) { return }
            try await Task.sleep(for: .seconds(2))
        }
    }

    private func verdict() throws -> (Verdict, summary: String) {
        let backendArrivals = try backendArrivals()
        let mqttArrivals = mqttArrivals()
        let journalMovedAside = ((try? FileManager.default.contentsOfDirectory(atPath: stateDirectory)) ?? [])
            .contains { $0.hasPrefix("journal.sqlite.damaged-") }
        let atBackend = lineKeys(backendArrivals)
        return state.withLock { state in
            var excused = state.excused
            excused[.mqtt, default: []].formUnion(state.lostByBroker.intersection(atBackend))
            if journalMovedAside {
                for (destination, keys) in state.lostWithJournal { excused[destination, default: []].formUnion(keys) }
            }
            state.excused = excused
            var verdict = Verdict(
                gateway: gatewayID, boards: boardCount,
                written: state.written.map { ($0.key, $0.promised, $0.at - state.start) },
                excused: excused, arrivals: [.mqtt: mqttArrivals, .backend: backendArrivals],
                peakPrivateDirty: state.peakPrivateDirty, memoryBound: memoryBound)
            verdict.problems = state.problems
            let promised = state.written.filter(\.promised).count
            let critical = state.written.filter { $0.promised && $0.key.critical }.count
            let summary = """
                faults applied \(state.faultsApplied); lines written \(state.written.count + state.hostile) \
                (\(state.hostile) hostile), \(promised) promised (\(critical) critical); \
                excused at MQTT \(state.excused[.mqtt]?.count ?? 0), at the backend \(state.excused[.backend]?.count ?? 0); \
                arrived at MQTT \(mqttArrivals.count) messages, at the backend \(backendArrivals.count) rows; \
                peak private dirty \(state.peakPrivateDirty) KiB (bound \(memoryBound) KiB), peak RSS \(state.peakRSS) KiB
                """
            return (verdict, summary)
        }
    }

    /// The gateway's log, last lines.
    func logTail(_ lines: Int) -> String {
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        // Without the hostile lines' own warnings (thousands, and as long as the lines), each cut short.
        return text.split(separator: "\n").filter { !$0.contains("line discarded") && !$0.contains("does not decode") }
            .suffix(lines).map { $0.count > 300 ? $0.prefix(300) + "…" : $0 }.joined(separator: "\n")
    }
}
