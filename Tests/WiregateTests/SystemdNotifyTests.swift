import Foundation
import Glibc
import Testing
import Wiregate
import WiregateTestKit

/// The daemon under `Type=notify`: this test plays systemd's side of sd_notify(3), a datagram
/// socket named by `$NOTIFY_SOCKET`.
@Suite struct SystemdNotifyTests {
    /// A bound datagram socket; returns the messages received within `timeout`.
    final class NotifySocket {
        let fd: Int32
        let path: String

        init() throws {
            path = try makeTemporaryDirectory("notify") + "/notify.sock"
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard fd >= 0, bound == 0 else { throw TestKitError("cannot bind \(path): errno \(errno)") }
        }

        deinit { close(fd) }

        func receive(until deadline: ContinuousClock.Instant, while more: ([String]) -> Bool) -> [String] {
            var messages: [String] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while more(messages) && ContinuousClock.now < deadline {
                var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 100) > 0 else { continue }
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count > 0 { messages.append(String(decoding: buffer[..<count], as: UTF8.self)) }
            }
            return messages
        }
    }

    @Test func readyThenWatchdogThenStopping() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let notify = try NotifySocket()
        let state = try makeTemporaryDirectory("notify")
        try GatewayHarness.yaml(
            port: broker.port,
            boards: """
                  - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s }
                """, stateDirectory: state
        ).write(toFile: state + "/wiregate.yaml", atomically: true, encoding: .utf8)
        let started = ContinuousClock.now
        let daemon = try ChildProcess(
            CommandLineTests.binary, ["run", "--config", state + "/wiregate.yaml"],
            environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"])
        let messages = notify.receive(until: started + .seconds(10)) {
            $0.filter { $0.hasPrefix("WATCHDOG=1") }.count < 3
        }
        #expect(messages.first?.hasPrefix("READY=1\nSTATUS=") == true, "\(messages)")
        #expect(messages.first?.contains("events pending") == true)
        // Every half WATCHDOG_USEC (200 ms) after READY: three in well under the 10 s allowed.
        #expect(messages.dropFirst().filter { $0.hasPrefix("WATCHDOG=1\nSTATUS=broker ") }.count == 3, "\(messages)")
        daemon.send(SIGTERM)
        let last = notify.receive(until: .now + .seconds(10)) { !$0.contains("STOPPING=1") }
        #expect(last.contains("STOPPING=1"))
        #expect(daemon.waitForExit() == 0)
    }

    /// The house stays protected with the broker gone, and nothing restarts the daemon for it:
    /// the watchdog goes on being fed (each ping asked the alarm's decision loop), and says so.
    @Test func theWatchdogIsFedWithTheBrokerDeadAndAsksTheAlarm() async throws {
        let broker = try MosquittoBroker()
        let board = try SimulatedBoard()
        let notify = try NotifySocket()
        let state = try makeTemporaryDirectory("notify-alarm")
        let hash = try yescryptHash(of: "1234")
        try
            (GatewayHarness.yaml(
                port: broker.port,
                boards: """
                      - { name: sim, match: { path: \(board.path) }, protocol: kv, settle: 0s }
                    """, stateDirectory: state)
                + """

                alarm:
                  codes: [{ name: anna, hash: '\(hash)' }]
                  zones: [{ name: door, board: sim, key: door, open: open, type: instant }]
                  socket: \(state)/alarm.sock
                """
        ).write(toFile: state + "/wiregate.yaml", atomically: true, encoding: .utf8)
        let daemon = try ChildProcess(
            CommandLineTests.binary, ["run", "--config", state + "/wiregate.yaml"],
            environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"])
        let ready = notify.receive(until: .now + .seconds(10)) { !$0.contains { $0.hasPrefix("READY=1") } }
        #expect(ready.contains { $0.hasPrefix("READY=1") }, "\(ready)")
        broker.stop()
        let messages = notify.receive(until: .now + .seconds(15)) {
            $0.filter { $0.contains("broker NOT connected") && $0.hasPrefix("WATCHDOG=1") }.count < 3
        }
        let fed = messages.filter { $0.hasPrefix("WATCHDOG=1") && $0.contains("broker NOT connected") }
        #expect(fed.count == 3, "\(messages)")
        #expect(fed.allSatisfy { $0.hasSuffix(", alarm disarmed") }, "\(fed)")
        daemon.send(SIGTERM)
        #expect(daemon.waitForExit() == 0)
    }
}
