import Testing

@testable import WiregateCore

/// Matching ttys to board entries, identity, the hello line, and the discovery config.
@Suite struct DiscoveryTests {
    static func device(
        _ node: String = "/dev/ttyACM0", vid: String = "2341", pid: String = "0043",
        serial: String? = nil, port: String = "1-1"
    ) -> TTYDevice {
        TTYDevice(
            node: node, sysPath: "/sys/devices/usb/\(port)/tty/\(node.split(separator: "/").last!)",
            usb: .init(vendorID: vid, productID: pid, serial: serial, portPath: port))
    }

    static func config(_ extra: String, boards: String) throws -> GatewayConfig {
        try GatewayConfig.parse(
            yaml: """
                gateway: { id: gw, state_dir: /tmp/x }
                mqtt: { host: 127.0.0.1 }
                \(extra)
                boards:
                \(boards)
                """, file: "test.yaml")
    }

    @Test func identityPrefersSerialThenHelloThenPort() {
        let withSerial = BoardIdentity(device: Self.device(serial: "A1B2"))!
        #expect(withSerial == BoardIdentity(source: .serial, value: "A1B2"))
        #expect(withSerial.with(hello: "kitchen") == withSerial)
        let bare = BoardIdentity(device: Self.device(port: "1-1.3"))!
        #expect(bare == BoardIdentity(source: .usbPath, value: "1-1.3"))
        #expect(bare.adoptedName == "usb-1-1.3")
        #expect(bare.with(hello: "kitchen") == BoardIdentity(source: .hello, value: "kitchen"))
        #expect(
            BoardIdentity(
                device: TTYDevice(node: "/dev/ttyS0", sysPath: "/sys/devices/platform/serial8250/tty/ttyS0", usb: nil))
                == nil)
    }

    @Test func helloPattern() throws {
        let pattern = try #require(HelloPattern("#hello id=<name>"))
        #expect(pattern.name(in: "#hello id=front-door") == "front-door")
        #expect(pattern.name(in: "#hello id= garage ") == "garage")
        #expect(pattern.name(in: "#hello id=") == nil)
        #expect(pattern.name(in: "#hello id=a/b") == nil)  // not one topic level
        #expect(pattern.name(in: "door=open") == nil)
        #expect(HelloPattern("hello") == nil)
        #expect(HelloPattern("<name> and <name>") == nil)
        #expect(HelloPattern("I am <name>!")?.name(in: "I am siren!") == "siren")
    }

    @Test func firstMatchingEntryWinsAndEveryKeyMustHold() throws {
        let config = try Self.config(
            "",
            boards: """
                  - { name: by-serial, match: { serial: "A1B2" }, protocol: kv }
                  - { name: by-port, match: { usb_path: "1-1.2", vid: 1a86 }, protocol: kv }
                  - { name: any-uno, match: { vid: 2341, pid: "0043" }, protocol: kv }
                """)
        let matcher = DeviceMatcher(
            matches: config.boards.map(\.match), allowList: config.discovery.usbIDs, adoptUnknown: false)
        #expect(matcher.decide(Self.device(serial: "A1B2")) == .board(index: 0))
        #expect(matcher.decide(Self.device(serial: "OTHER")) == .board(index: 2))
        #expect(matcher.decide(Self.device(vid: "1a86", pid: "7523", port: "1-1.2")) == .board(index: 1))
        #expect(
            matcher.decide(Self.device(vid: "1a86", pid: "7523", port: "1-1.3"))
                == .ignore(reason: "no board entry matches, and unknown_boards is ignore"))
        #expect(
            matcher.decide(Self.device(vid: "046d", pid: "c52b"))
                == .ignore(reason: "046d:c52b is not in discovery.usb_ids"))
        #expect(
            matcher.decide(TTYDevice(node: "/dev/ttyS0", sysPath: "/sys/x", usb: nil))
                == .ignore(reason: "no USB parent"))
    }

    @Test func helloEntriesWaitForTheLineAndTwoSameBoardsStayApart() throws {
        let config = try Self.config(
            "",
            boards: """
                  - { name: kitchen, match: { hello: kitchen, vid: 1a86 }, protocol: kv }
                  - { name: garage, match: { hello: garage }, protocol: kv }
                  - { name: left, match: { usb_path: "1-1.4" }, protocol: kv }
                """)
        let matcher = DeviceMatcher(
            matches: config.boards.map(\.match), allowList: config.discovery.usbIDs, adoptUnknown: false)
        let ch340 = Self.device(vid: "1a86", pid: "7523", port: "1-1.2")
        #expect(matcher.decide(ch340) == .awaitHello)
        #expect(matcher.decide(ch340, hello: "kitchen", helloRead: true) == .board(index: 0))
        #expect(matcher.decide(ch340, hello: "garage", helloRead: true) == .board(index: 1))
        #expect(
            matcher.decide(ch340, hello: nil, helloRead: true)
                == .ignore(reason: "no board entry matches, and unknown_boards is ignore"))
        // Same vendor:product, no serial: told apart by their sockets.
        #expect(
            matcher.decide(Self.device(vid: "1a86", pid: "7523", port: "1-1.4"), hello: nil, helloRead: true)
                == .board(index: 2))
    }

    @Test func adoptionNamesFromIdentityWithDefaults() throws {
        let config = try Self.config(
            """
            unknown_boards: adopt
            defaults: { protocol: kv, baud: 9600 }
            """, boards: "  []")
        let matcher = DeviceMatcher(matches: [], allowList: config.discovery.usbIDs, adoptUnknown: true)
        #expect(
            matcher.decide(Self.device(serial: "A1B2"))
                == .adopt(name: "A1B2", identity: BoardIdentity(source: .serial, value: "A1B2")))
        #expect(matcher.decide(Self.device(port: "1-1.2")) == .awaitHello)
        #expect(
            matcher.decide(Self.device(port: "1-1.2"), hello: "attic", helloRead: true)
                == .adopt(name: "attic", identity: BoardIdentity(source: .hello, value: "attic")))
        #expect(
            matcher.decide(Self.device(port: "1-1.2"), hello: nil, helloRead: true)
                == .adopt(name: "usb-1-1.2", identity: BoardIdentity(source: .usbPath, value: "1-1.2")))
        let adopted = try #require(config.adoptedBoard(named: "attic"))
        #expect(adopted.baud == 9600 && adopted.protocolName == "kv" && adopted.name == "attic")
        #expect(config.needsDiscovery)
    }

    /// The regression: a USB device whose serial number or hello line sanitises to a configured
    /// board's name was adopted under it while the real board was away (its topics, its commands),
    /// and the real board was then refused as a second device.
    @Test func anAdoptedBoardCanNeverTakeAConfiguredName() throws {
        let matcher = DeviceMatcher(
            matches: [BoardMatch(serial: "REAL-SERIAL")],
            allowList: try Self.config("unknown_boards: adopt\ndefaults: { protocol: kv }", boards: "  []").discovery
                .usbIDs,
            adoptUnknown: true, reservedNames: ["front-door"])
        guard case .refuse(let reason) = matcher.decide(Self.device(serial: "front-door")) else {
            Issue.record("a device with the serial number 'front-door' was not refused")
            return
        }
        #expect(reason.contains("front-door") && reason.contains("configured"))
        guard case .refuse = matcher.decide(Self.device(port: "1-4"), hello: "front-door", helloRead: true) else {
            Issue.record("a device saying hello as 'front-door' was not refused")
            return
        }
        // Sanitised first: a serial that becomes the name once trimmed is refused too.
        guard case .refuse = matcher.decide(Self.device(serial: " front-door\t")) else {
            Issue.record("refused only when written exactly")
            return
        }
        #expect(matcher.decide(Self.device(serial: "REAL-SERIAL")) == .board(index: 0))
        #expect(
            matcher.decide(Self.device(serial: "other"))
                == .adopt(name: "other", identity: BoardIdentity(source: .serial, value: "other")))
    }

    @Test func aFixedPathIsNotDiscovered() throws {
        let config = try Self.config("", boards: "  - { name: sim, match: { path: /dev/ttyACM0 }, protocol: raw }")
        #expect(!config.needsDiscovery)
        let matcher = DeviceMatcher(
            matches: config.boards.map(\.match), allowList: config.discovery.usbIDs, adoptUnknown: true)
        #expect(matcher.decide(Self.device(serial: "A1B2")) == .ignore(reason: "board entry 1 has this fixed path"))
    }

    @Test func configMistakesSayWhatAndWhere() throws {
        func problem(_ extra: String, _ boards: String) -> ConfigError? {
            do { _ = try Self.config(extra, boards: boards); return nil } catch let error as ConfigError {
                return error
            } catch { return nil }
        }
        let badID = try #require(
            problem(
                "discovery: { usb_ids: [\"2341:*\", \"arduino\"] }",
                "  - { name: a, match: { serial: X }, protocol: kv }"))
        #expect(
            badID.path == "discovery.usb_ids" && badID.message.contains("'arduino' is not a USB vendor:product pair"))
        let badVid = try #require(problem("", "  - { name: a, match: { vid: 23 }, protocol: kv }"))
        #expect(badVid.path == "boards[0].match.vid" && badVid.message == "must be four hex digits, such as 2341")
        let mixed = try #require(problem("", "  - { name: a, match: { path: /dev/ttyACM0, serial: X }, protocol: kv }"))
        #expect(mixed.path == "boards[0].match.path" && mixed.message.hasPrefix("a fixed path is not combined"))
        let empty = try #require(problem("", "  - { name: a, match: {}, protocol: kv }"))
        #expect(empty.path == "boards[0].match" && empty.message.hasPrefix("needs at least one of"))
        let typo = try #require(problem("", "  - { name: a, match: { vendor: 2341 }, protocol: kv }"))
        #expect(typo.message.contains("did you mean 'vid'"))
        let twice = try #require(
            problem(
                "",
                """
                  - { name: a, match: { serial: X }, protocol: kv }
                  - { name: b, match: { serial: X }, protocol: kv }
                """))
        #expect(twice.path == "boards[1].match" && twice.message.contains("could never match"))
        let adoptWithoutDefaults = try #require(problem("unknown_boards: adopt", "  []"))
        #expect(adoptWithoutDefaults.path == "unknown_boards" && adoptWithoutDefaults.message.contains("defaults"))
        let hello = try #require(
            problem("discovery: { hello: \"#hello\" }", "  - { name: a, match: { serial: X }, protocol: kv }"))
        #expect(hello.path == "discovery.hello" && hello.message.contains("<name>"))
        let noBoards = try #require(problem("", "  []"))
        #expect(noBoards.message == "needs at least one board (or unknown_boards: adopt)")
    }
}
