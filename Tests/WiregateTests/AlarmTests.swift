import Foundation
import Testing
import Wiregate
import WiregateCore
import WiregateTestKit

/// The alarm end to end, on real ptys, with the broker frozen (SIGSTOP): from the door contact's
/// line to the siren board's line with no network in between.
@Suite(.serialized) struct AlarmTests {
    /// A yescrypt hash of `1234`, made once with the command the README gives.
    static let hash = (try? yescryptHash(of: "1234")) ?? ""

    let broker: MosquittoBroker
    let door: SimulatedBoard
    let siren: SimulatedBoard
    let keypad: SimulatedBoard
    let hall: SimulatedBoard
    let subscriber: Subscriber

    init() throws {
        broker = try MosquittoBroker()
        door = try SimulatedBoard()
        siren = try SimulatedBoard()
        keypad = try SimulatedBoard()
        hall = try SimulatedBoard()
        subscriber = try Subscriber(port: broker.port, filter: "wiregate/test-gw/#")
    }

    /// Keeps the hall board talking (it is a zone, silent past 2 s otherwise) until cancelled.
    func keepHallTalking() -> Task<Void, Never> {
        let hall = self.hall
        return Task {
            while !Task.isCancelled {
                hall.send("motion=0")
                try? await Task.sleep(for: .milliseconds(300))
            }
        }
    }

    /// The config text `start` used last, for the CLI.
    func config(_ extra: String = "", state: String? = nil, sirenRepeat: String = "1s", sirenTimeout: String = "3s")
        -> String
    {
        GatewayHarness.yaml(
            port: broker.port,
            boards: """
                  - { name: door, match: { path: \(door.path) }, protocol: kv, settle: 0s }
                  - { name: siren, match: { path: \(siren.path) }, protocol: kv, settle: 0s, commands: [SIREN=ON, SIREN=OFF] }
                  - { name: keypad, match: { path: \(keypad.path) }, protocol: kv, settle: 0s }
                  - { name: hall, match: { path: \(hall.path) }, protocol: kv, settle: 0s, silence_timeout: 2s }
                """, stateDirectory: state)
                + """

                alarm:
                  entry_delay: { away: 2s }
                  siren_timeout: \(sirenTimeout)
                  siren_repeat: \(sirenRepeat)
                  lockout: { attempts: 3, duration: 3s }
                  codes: [{ name: anna, hash: '\(Self.hash)' }]
                  zones:
                    - { name: front door, board: door, key: door, open: open, type: delayed }
                    - { name: window, board: door, key: window, closed: closed, type: instant }
                    - { name: smoke, board: keypad, key: smoke, open: "1", type: always }
                    - { name: hall, board: hall, key: motion, open: "1", type: instant }
                  sirens: [{ board: siren, on: SIREN=ON, off: SIREN=OFF }]
                  keypads: [{ board: keypad }]
                \(extra)
                """
    }

    func start(_ extra: String = "", state: String? = nil) async throws -> GatewayHarness {
        #expect(Self.hash.hasPrefix("$y$"), "mkpasswd (Debian's whois package) made no yescrypt hash")
        let yaml = config(extra, state: state)
        let harness = try GatewayHarness(yaml: yaml)
        let directory = harness.gateway.directory
        #expect(
            await eventually {
                ["door", "siren", "keypad", "hall"].allSatisfy(directory.isOnline) && harness.gateway.mqtt.isConnected
            })
        return harness
    }

    func sirenLines(within timeout: Duration, until: @escaping ([String]) -> Bool) async -> [String] {
        await siren.receivedLines(within: timeout, until: until)
    }

    func arm(_ harness: GatewayHarness, _ mode: ArmMode = .away) async throws {
        let panel = try #require(harness.gateway.alarm)
        #expect(await panel.submit(.arm(mode), code: nil, source: .cli(user: "test")) == .done(mode.armedState))
    }

    @Test func armedAwayWithTheBrokerFrozenTheDoorSoundsTheSirenAfterTheEntryDelayThenStops() async throws {
        let talking = keepHallTalking()
        defer { talking.cancel() }
        let harness = try await start()
        try await arm(harness)
        broker.pause()
        let opened = ContinuousClock.now
        door.send("door=open")
        let on = await sirenLines(within: .seconds(15)) { $0.contains("SIREN=ON") }
        let sounded = ContinuousClock.now - opened
        #expect(on.contains("SIREN=ON"), "\(on)")
        #expect(sounded >= .milliseconds(1900), "the entry delay is 2 s: \(sounded)")
        #expect(harness.gateway.alarm?.status.state == .triggered)
        // Again every second while triggered, then off at the 3 s timeout, and armed again.
        let rest = await sirenLines(within: .seconds(15)) { $0.contains("SIREN=OFF") }
        #expect(rest.filter { $0 == "SIREN=ON" }.count >= 1 && rest.last == "SIREN=OFF", "\(rest)")
        #expect(await eventually { harness.gateway.alarm?.status.state == .armedAway })
        // The broker back: every transition arrives, in order, as a critical event, and the
        // retained state is the current one.
        broker.resume()
        let expected = ["armed_away", "pending", "triggered", "armed_away"]
        #expect(
            await subscriber.waitAsync(timeout: .seconds(30)) { messages in
                transitions(messages) == expected
            }, "\(transitions(subscriber.messages))")
        #expect(
            await eventually {
                subscriber.messages.last { $0.topic == "wiregate/test-gw/alarm/state" }?.payload == "armed_away"
            })
        await harness.stop()
    }

    @Test func aDisarmFromTheKeypadWithinTheEntryDelaySoundsNothing() async throws {
        let talking = keepHallTalking()
        defer { talking.cancel() }
        let harness = try await start()
        try await arm(harness)
        broker.pause()
        door.send("door=open")
        #expect(await eventually { harness.gateway.alarm?.status.state == .pending })
        keypad.send("action=DISARM;code=1234")
        #expect(await eventually { harness.gateway.alarm?.status.state == .disarmed })
        let lines = await sirenLines(within: .seconds(4)) { $0.contains("SIREN=ON") }
        #expect(!lines.contains("SIREN=ON"), "\(lines)")
        broker.resume()
        // The code itself is never published: the keypad's line is the alarm's, not an event.
        #expect(await subscriber.waitAsync(timeout: .seconds(30)) { transitions($0).last == "disarmed" })
        #expect(!subscriber.messages.contains { $0.payload.contains("1234") || $0.topic.hasSuffix("/code") })
        #expect(subscriber.messages.contains { $0.payload.contains("\"by\":\"anna (keypad keypad)\"") })
        await harness.stop()
    }

    @Test func smokeWhileDisarmedSoundsAtOnce() async throws {
        let talking = keepHallTalking()
        defer { talking.cancel() }
        let harness = try await start()
        broker.pause()
        keypad.send("smoke=1")
        let on = await sirenLines(within: .seconds(10)) { $0.contains("SIREN=ON") }
        #expect(on.contains("SIREN=ON"))
        #expect(harness.gateway.alarm?.status.cause == "smoke")
        broker.resume()
        // A broker client cannot silence it: the siren's lines are the alarm's alone, and while
        // the alarm is not disarmed its board takes nothing from MQTT. Counted as refused.
        let router = harness.gateway.router
        try await publish(port: broker.port, topic: "wiregate/test-gw/siren/set", payload: "SIREN=OFF")
        #expect(await eventually(timeout: .seconds(10)) { router.counters.refused["siren"] == 1 })
        #expect(!siren.receivedLines().contains("SIREN=OFF"))
        #expect(harness.gateway.alarm?.status.state == .triggered)
        await harness.stop()
    }

    @Test func theDoorBoardUnpluggedWhileArmedTriggers() async throws {
        let talking = keepHallTalking()
        defer { talking.cancel() }
        let harness = try await start()
        try await arm(harness)
        broker.pause()
        door.hangUp()
        let on = await sirenLines(within: .seconds(15)) { $0.contains("SIREN=ON") }
        #expect(on.contains("SIREN=ON"))
        #expect(harness.gateway.alarm?.status.cause == "window", "the instant zone on the cut board")
        broker.resume()
        await harness.stop()
    }

    @Test func aBoardSilentPastItsTimeoutIsOfflineAndTriggers() async throws {
        let talking = keepHallTalking()
        defer { talking.cancel() }
        let harness = try await start()
        try await arm(harness)
        talking.cancel()
        // The hall board says nothing more: 2 s later it is offline, and its zone open.
        #expect(await eventually(timeout: .seconds(15)) { !harness.gateway.directory.isOnline("hall") })
        #expect(harness.board("hall")!.counters.silences >= 1)
        let on = await sirenLines(within: .seconds(10)) { $0.contains("SIREN=ON") }
        #expect(on.contains("SIREN=ON") && harness.gateway.alarm?.status.cause == "hall")
        // Talking again: online again.
        hall.send("motion=0")
        #expect(await eventually { harness.gateway.directory.isOnline("hall") })
        await harness.stop()
    }

    @Test func wrongCodesLockOutEveryCodeThenTheRightOneWorksAgain() async throws {
        let talking = keepHallTalking()
        defer { talking.cancel() }
        let harness = try await start()
        try await arm(harness)
        let panel = try #require(harness.gateway.alarm)
        for _ in 0..<3 {
            #expect(await panel.submit(.disarm, code: "0000", source: .mqtt) == .refused("wrong code"))
        }
        #expect(panel.status.lockedOut)
        let refused = await panel.submit(.disarm, code: "1234", source: .mqtt)
        #expect(refused == .refused("codes are locked out after 3 wrong ones"))
        #expect(
            await subscriber.waitAsync(timeout: .seconds(10)) {
                $0.contains { $0.topic == "wiregate/test-gw/alarm/event" && $0.payload.contains("locked_out") }
            })
        try await Task.sleep(for: .seconds(3))
        #expect(await panel.submit(.disarm, code: "1234", source: .mqtt) == .done(.disarmed))
        await harness.stop()
    }

    @Test func alarmSetTakesHomeAssistantsPayloadsAndDisarmsOnlyWithACodeAndTLSOrConsent() async throws {
        let talking = keepHallTalking()
        defer { talking.cancel() }
        let state = temporaryPath("alarm-set")
        let harness = try await start(state: state)
        let panel = try #require(harness.gateway.alarm)
        let topic = "wiregate/test-gw/alarm/set"
        try await publish(port: broker.port, topic: topic, payload: "ARM_NIGHT")
        #expect(await eventually { panel.status.state == .armedNight })
        // No TLS on this broker connection: a disarm is refused even with the right code.
        try await publish(port: broker.port, topic: topic, payload: #"{"action": "DISARM", "code": "1234"}"#)
        try await Task.sleep(for: .seconds(1))
        #expect(panel.status.state == .armedNight)
        await harness.stop()

        // A retained command, there when the gateway subscribes, is refused whatever it says.
        try await publish(port: broker.port, topic: topic, payload: #"{"action":"DISARM","code":"1234"}"#, retain: true)
        let allowed = try await start("  allow_disarm_without_tls: true", state: state)
        let allowedPanel = try #require(allowed.gateway.alarm)
        #expect(allowedPanel.status.state == .armedNight, "restored")
        try await publish(port: broker.port, topic: topic, payload: "", retain: true)
        try await publish(port: broker.port, topic: topic, payload: "DISARM")
        try await Task.sleep(for: .seconds(1))
        #expect(allowedPanel.status.state == .armedNight)
        try await publish(port: broker.port, topic: topic, payload: #"{"action":"DISARM","code":"1234"}"#)
        #expect(await eventually { allowedPanel.status.state == .disarmed })
        // The refusal of the bare DISARM is logged, never journaled (a flood of them must not
        // push real events out of the journal).
        #expect(!subscriber.messages.contains { $0.payload.contains("a code is needed") })
        await allowed.stop()
    }

    /// Runs `wiregate` (as `user` when given, through setpriv) with `input` on its standard input.
    func cli(
        _ arguments: [String], input: String = "", binary: String = CommandLineTests.binary, as user: uid_t? = nil,
        retries: Int = 5
    ) async throws -> (status: Int32, output: String) {
        let process = Process()
        if let user {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=\(user)", "--regid=\(user)", "--clear-groups", binary] + arguments
            process.environment = ["PATH": "/usr/bin:/bin"]
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
        }
        let stdin = Pipe()
        let output = Pipe()
        process.standardInput = stdin
        process.standardOutput = output
        process.standardError = output
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        // Polled: waitUntilExit would hold a thread of the pool the in-process daemon answers on.
        _ = await eventually(timeout: .seconds(60)) { !process.isRunning }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        // A binary just copied may still be open for writing in a child another test forked at that
        // moment (until that child's exec closes it): exec then fails with ETXTBSY. Not the CLI's doing.
        if text.contains("Text file busy"), retries > 0 {
            try await Task.sleep(for: .milliseconds(200))
            return try await cli(arguments, input: input, binary: binary, as: user, retries: retries - 1)
        }
        return (process.terminationStatus, text)
    }

    @Test func theCLIArmsAndDisarmsThroughTheSocketAndRefusesAnotherUser() async throws {
        let talking = keepHallTalking()
        defer { talking.cancel() }
        // A directory anyone may enter (not below the test's own scratch folder, which is 0700),
        // so that only the socket's own locks stand in the way.
        let shared = "/tmp/wiregate-alarm-cli-\(UUID())"
        try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: shared) }
        chmod(shared, 0o755)
        let socket = shared + "/alarm.sock"
        let text = config("  socket: \(socket)")
        let path = shared + "/wiregate.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
        let harness = try GatewayHarness(yaml: text)
        #expect(await eventually { FileManager.default.fileExists(atPath: socket) })
        #expect(await eventually { harness.gateway.directory.isOnline("hall") })

        let armed = try await cli(["alarm", "arm", "away", "--config", path])
        #expect(armed.status == 0 && armed.output.contains("alarm: armed_away"), "\(armed)")
        let status = try await cli(["alarm", "status", "--config", path])
        #expect(status.status == 0 && status.output.contains("armed_away"))
        // The code on standard input, never on the command line.
        let wrong = try await cli(["alarm", "disarm", "--config", path], input: "9999\n")
        #expect(wrong.status == 2 && wrong.output.contains("refused: wrong code"), "\(wrong)")
        let disarmed = try await cli(["alarm", "disarm", "--config", path], input: "1234\n")
        #expect(disarmed.status == 0 && disarmed.output.contains("alarm: disarmed"), "\(disarmed)")
        #expect(
            await subscriber.waitAsync(timeout: .seconds(10)) {
                $0.contains { $0.payload.contains("\"by\":\"anna (cli root)\"") }
            })

        // Another user: the binary copied where it may run it.
        let binary = shared + "/wiregate"
        try copyExecutable(CommandLineTests.binary, to: binary)
        let denied = try await cli(["alarm", "status", "--config", path], binary: binary, as: 65534)
        #expect(denied.status == 1 && denied.output.contains("only root and the service's user and group"), "\(denied)")
        // Past the socket file's mode (0660), the daemon's own check of the peer's credentials.
        chmod(socket, 0o666)
        let refused = try await cli(["alarm", "arm", "home", "--config", path], binary: binary, as: 65534)
        #expect(
            refused.status == 1 && refused.output.contains("only root and the service's user and group"), "\(refused)")
        #expect(harness.gateway.alarm?.status.state == .disarmed)
        await harness.stop()
        #expect(!FileManager.default.fileExists(atPath: socket), "removed at the stop")
    }

    /// The daemon binary, killed with SIGKILL (no clean stop: the state is what `alarm.json` had).
    func daemon(state: String, sirenRepeat: String = "1s", sirenTimeout: String = "3s") throws -> (
        process: ChildProcess, config: String
    ) {
        let path = state + "/wiregate.yaml"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        try config(
            "  socket: \(state)/alarm.sock\n", state: state, sirenRepeat: sirenRepeat, sirenTimeout: sirenTimeout
        ).write(
            toFile: path, atomically: true, encoding: .utf8)
        return (try ChildProcess(CommandLineTests.binary, ["run", "--config", path]), path)
    }

    func alarmState(_ state: String) -> AlarmState? {
        (try? DaemonState.read(stateDirectory: state))?.alarm?.state
    }

    @Test func killedWhileArmedItIsStillArmedAfterTheRestart() async throws {
        let talking = keepHallTalking()
        defer { talking.cancel() }
        let state = temporaryPath("alarm-kill")
        var (gateway, path) = try daemon(state: state)
        #expect(
            await eventually { (try? DaemonState.read(stateDirectory: state))?.boards.values.allSatisfy { $0 } == true }
        )
        let armed = try await cli(["alarm", "arm", "away", "--config", path])
        #expect(armed.status == 0, "\(armed)")
        gateway.send(SIGKILL)
        _ = gateway.waitForExit()
        (gateway, _) = try daemon(state: state)
        defer { gateway.terminate() }
        #expect(await eventually { alarmState(state) == .armedAway })
        // Armed for real: the window opens, the siren sounds (sent until it does: the first line
        // after the daemon opens the port is discarded as partial).
        let opening = Task {
            while !Task.isCancelled {
                door.send("window=ajar")
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        defer { opening.cancel() }
        let on = await sirenLines(within: .seconds(15)) { $0.contains("SIREN=ON") }
        #expect(on.contains("SIREN=ON"), "\(on)")
    }

    @Test func killedWhileTriggeredTheSirenSoundsAgainAfterTheRestart() async throws {
        let talking = keepHallTalking()
        defer { talking.cancel() }
        let state = temporaryPath("alarm-kill-triggered")
        // A long siren time: it is still sounding when the daemon comes back.
        var (gateway, path) = try daemon(state: state, sirenRepeat: "10m", sirenTimeout: "10m")
        #expect(
            await eventually { (try? DaemonState.read(stateDirectory: state))?.boards.values.allSatisfy { $0 } == true }
        )
        #expect(try await cli(["alarm", "arm", "away", "--config", path]).status == 0)
        door.send("x=1")
        try await Task.sleep(for: .milliseconds(200))
        door.send("window=ajar")
        #expect(await sirenLines(within: .seconds(15)) { $0.contains("SIREN=ON") }.contains("SIREN=ON"))
        gateway.send(SIGKILL)
        _ = gateway.waitForExit()
        _ = siren.receivedLines()
        (gateway, _) = try daemon(state: state, sirenRepeat: "10m", sirenTimeout: "10m")
        defer { gateway.terminate() }
        // No repeat is due for ten minutes: this on line is the restart's own.
        let again = await sirenLines(within: .seconds(20)) { $0.contains("SIREN=ON") }
        #expect(again.contains("SIREN=ON"), "\(again)")
        #expect(alarmState(state) == .triggered)
    }

    @Test func aSocketPathThatIsNotASocketIsLeftAloneAndTheAlarmRunsOn() async throws {
        let talking = keepHallTalking()
        defer { talking.cancel() }
        let state = try makeTemporaryDirectory("alarm-socket")
        let notASocket = state + "/alarm.json.bak"
        try "keep me".write(toFile: notASocket, atomically: true, encoding: .utf8)
        let harness = try await start("  socket: \(notASocket)")
        try await arm(harness)
        #expect(try String(contentsOfFile: notASocket, encoding: .utf8) == "keep me")
        door.send("window=ajar")
        #expect(await sirenLines(within: .seconds(10)) { $0.contains("SIREN=ON") }.contains("SIREN=ON"))
        await harness.stop()
    }

    @Test func aStateThatCannotBeSavedStillSoundsTheSirenAndSaysSo() async throws {
        let talking = keepHallTalking()
        defer { talking.cancel() }
        let state = try makeTemporaryDirectory("alarm-unsaved")
        // A directory where the temporary file must go: every save of alarm.json fails.
        try FileManager.default.createDirectory(atPath: state + "/alarm.json.tmp", withIntermediateDirectories: false)
        let harness = try await start(state: state)
        let panel = try #require(harness.gateway.alarm)
        #expect(await panel.submit(.arm(.away), code: nil, source: .mqtt) == .done(.armedAway))
        #expect(panel.status.notSaved != nil, "\(panel.status)")
        door.send("window=ajar")
        #expect(await sirenLines(within: .seconds(10)) { $0.contains("SIREN=ON") }.contains("SIREN=ON"))
        #expect(
            await eventually {
                (try? DaemonState.read(stateDirectory: state))?.alarm?.notSaved != nil
            })
        await harness.stop()
    }

    @Test func theStateSurvivesARestart() async throws {
        let state = temporaryPath("alarm-state")
        let talking = keepHallTalking()
        defer { talking.cancel() }
        let first = try await start(state: state)
        try await arm(first, .home)
        await first.stop()
        let second = try await start(state: state)
        #expect(second.gateway.alarm?.status.state == .armedHome)
        await second.stop()
    }
}

/// The `to` of each `changed` alarm event, in the order received.
func transitions(_ messages: [Subscriber.Message]) -> [String] {
    messages.filter { $0.topic == "wiregate/test-gw/alarm/event" }.compactMap { message in
        guard let object = try? JSONSerialization.jsonObject(with: Data(message.payload.utf8)) as? [String: String],
            object["event"] == "changed"
        else { return nil }
        return object["to"]
    }
}
