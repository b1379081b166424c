import Foundation
import Testing
import WiregateCore
import WiregateTestKit

@testable import Wiregate

/// The alarm's parts that need no board: code hashes, the shared subscription list, the names
/// no adopted board may take.
@Suite struct AlarmPartsTests {
    @Test func libcryptChecksCodesAndRefusesABrokenHash() throws {
        let hash = try yescryptHash(of: "1234")
        #expect(CodeChecker.matches("1234", hash: hash))
        #expect(!CodeChecker.matches("1235", hash: hash))
        #expect(!CodeChecker.matches("", hash: hash))
        #expect(CodeChecker.isUsable(hash))
        #expect(!CodeChecker.isUsable(String(hash.dropLast(5))), "cut short")
        #expect(!CodeChecker.isUsable("$y$j9T$not-a-salt"), "mangled")
        #expect(!CodeChecker.isUsable("$9$unknown$method"), "unknown method")
    }

    @Test func checkConfigRefusesAHashNoCodeCouldMatch() throws {
        let state = try makeTemporaryDirectory("alarm-hash")
        let hash = String(try yescryptHash(of: "1234").dropLast(5))
        let path = state + "/wiregate.yaml"
        try """
        gateway: { id: gw, state_dir: \(state) }
        mqtt: { host: 127.0.0.1 }
        boards: [{ name: door, match: { path: /dev/null }, protocol: kv }]
        alarm:
          codes: [{ name: anna, hash: '\(hash)' }]
          zones: [{ name: door, board: door, key: door, open: open, type: instant }]
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try runWiregate(["check-config", "--config", path])
        #expect(result.status == 78, "\(result)")
        #expect(result.output.contains("alarm.codes: the hash of code 'anna' is not one libcrypt can check"))
    }

    struct Handler: MQTTMessageHandler {
        let filters: [String]
        func handle(topic: String, payload: [UInt8], retained: Bool) async {}
    }

    @Test func aFilterAnotherCoversIsNotSubscribedTwice() {
        let alarm = Handler(filters: ["wiregate/gw/alarm/set"])
        // With adopted boards the router has a `+` level: it covers the alarm's topic.
        let adopting = MessageHandlers([alarm, Handler(filters: ["wiregate/gw/+/set", "wiregate/gw/door/set"])])
        #expect(adopting.filters == ["wiregate/gw/+/set"])
        let configured = MessageHandlers([alarm, Handler(filters: ["wiregate/gw/door/set"])])
        #expect(configured.filters == ["wiregate/gw/alarm/set", "wiregate/gw/door/set"])
        // The same exact filter twice: subscribed once, not dropped.
        #expect(MessageHandlers([alarm, alarm]).filters == ["wiregate/gw/alarm/set"])
    }

    @Test func theSocketAllowsTheServicesUserAndGroupOnly() {
        #expect(AlarmControlSocket.allows(uid: geteuid(), gid: 65534))
        #expect(AlarmControlSocket.allows(uid: 65534, gid: getegid()))
        // nobody, whose groups (nogroup) do not hold this process's group.
        #expect(getegid() == 65534 || !AlarmControlSocket.allows(uid: 65534, gid: 65534))
        #expect(!AlarmControlSocket.allows(uid: 4_000_000, gid: 4_000_000), "a uid with no user")
    }

    @Test func noAdoptedBoardMayBeCalledAlarm() throws {
        let config = try GatewayConfig.parse(
            yaml: """
                mqtt: { host: 127.0.0.1 }
                boards: []
                unknown_boards: adopt
                defaults: { protocol: kv }
                """, file: "test.yaml")
        #expect(DeviceMatcher(config: config).reservedNames.contains("alarm"))
    }
}
