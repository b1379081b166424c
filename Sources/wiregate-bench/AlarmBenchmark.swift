import ArgumentParser
import Foundation
import Histogram
import Wiregate
import WiregateCore
import WiregateTestKit

/// From the door line written on one pty to the siren line read on another, through the release
/// daemon's alarm, with the broker frozen (SIGSTOP): no network anywhere on the path.
struct AlarmBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "alarm")

    @Option(help: "Triggers to measure (each followed by a disarm and a re-arm from the keypad).")
    var triggers = 1000

    func run() async throws {
        let state = try makeTemporaryDirectory("bench-alarm")
        defer { try? FileManager.default.removeItem(atPath: state) }
        let broker = try MosquittoBroker()
        let door = try SimulatedBoard()
        let siren = try SimulatedBoard()
        let keypad = try SimulatedBoard()
        // The code's hash: one, like the README's `mkpasswd -m yescrypt`.
        let hash = try yescryptHash(of: "1234")
        let yaml = """
            gateway: { id: bench, state_dir: \(state) }
            mqtt: { host: 127.0.0.1, port: \(broker.port), reconnect_min: 50ms, reconnect_max: 500ms }
            log: { level: warning }
            boards:
              - { name: door, match: { path: \(door.path) }, protocol: kv, settle: 0s, classes: { window: critical } }
              - { name: siren, match: { path: \(siren.path) }, protocol: kv, settle: 0s, commands: [SIREN=ON, SIREN=OFF] }
              - { name: keypad, match: { path: \(keypad.path) }, protocol: kv, settle: 0s }
            alarm:
              codes: [{ name: bench, hash: '\(hash)' }]
              zones: [{ name: window, board: door, key: window, closed: closed, type: instant }]
              sirens: [{ board: siren, on: SIREN=ON, off: SIREN=OFF }]
              keypads: [{ board: keypad }]
            """
        let configPath = state + "/wiregate.yaml"
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let daemon = try ChildProcess(wiregateBinary, ["run", "--config", configPath])
        func daemonState() -> DaemonState? { try? DaemonState.read(stateDirectory: state) }
        while daemonState().map({
            ["door", "siren", "keypad"].allSatisfy($0.boards.keys.contains) && $0.boards.values.allSatisfy { $0 }
                && $0.brokerConnected
        }) != true {
            try await Task.sleep(for: .milliseconds(20))
        }
        for board in [door, keypad] { board.send("x=0") }  // the partial first line
        try await Task.sleep(for: .milliseconds(200))
        broker.pause()
        defer { broker.resume() }
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000)
        var missed = 0
        for _ in 0..<triggers {
            keypad.send("action=ARM_AWAY")
            while daemonState()?.alarm?.state != .armedAway { try await Task.sleep(for: .milliseconds(2)) }
            let sent = ContinuousClock.now
            door.send("window=open")
            var heard = false
            while !heard && ContinuousClock.now - sent < .seconds(5) {
                heard = siren.receivedLines(timeout: .seconds(1)).contains("SIREN=ON")
            }
            let took = ContinuousClock.now - sent
            if heard {
                _ = histogram.record(
                    UInt64(took.components.seconds) * 1_000_000
                        + UInt64(took.components.attoseconds / 1_000_000_000_000))
            } else {
                missed += 1
            }
            door.send("window=closed")
            keypad.send("action=DISARM;code=1234")
            while daemonState()?.alarm?.state != .disarmed { try await Task.sleep(for: .milliseconds(2)) }
            _ = siren.receivedLines()  // the repeats and the off line
        }
        daemon.terminate()
        print("alarm: door line on one pty -> siren line on another through the daemon, broker frozen, microseconds")
        print(
            "  instant zone: n=\(histogram.totalCount) p50=\(histogram.valueAtPercentile(50)) p99=\(histogram.valueAtPercentile(99)) "
                + "p99.9=\(histogram.valueAtPercentile(99.9)) max=\(histogram.max) missed=\(missed)")
    }
}
