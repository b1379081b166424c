import Foundation
import Testing

@testable import WiregateCore

@Suite struct ConfigTests {
    static let valid = """
        gateway: { id: house-1, state_dir: /var/lib/wiregate }
        mqtt: { host: 127.0.0.1, port: 1883, base_topic: wiregate, keepalive: 10, username: gw, password_file: /etc/wiregate/mqtt.pass }
        boards:
          - name: front-door
            match: { path: /dev/ttyACM0 }
            baud: 115200
            protocol: kv
            classes: { door: critical, "*": telemetry }
            commands: [ "SIREN=ON", "SIREN=OFF", "PING" ]
        """

    func error(_ yaml: String) -> ConfigError? {
        do {
            _ = try GatewayConfig.parse(yaml: yaml, file: "test.yaml")
            return nil
        } catch {
            return error
        }
    }

    @Test func theIssueExampleIsValid() throws {
        let config = try GatewayConfig.parse(yaml: Self.valid, file: "test.yaml")
        #expect(config.gateway.id == "house-1")
        #expect(config.mqtt.username == "gw")
        #expect(config.mqtt.passwordFile == "/etc/wiregate/mqtt.pass")
        let board = try #require(config.boards.first)
        #expect(board.match == BoardMatch(path: "/dev/ttyACM0"))
        #expect(board.classes.eventClass(forSubtopic: "door") == .critical)
        #expect(board.classes.eventClass(forSubtopic: "battery") == .telemetry)
        #expect(board.commands.allows("SIREN=ON"))
        #expect(!board.commands.allows("SIREN=ON\nREBOOT"))
        #expect(!board.commands.allows("REBOOT"))
        // A pattern's '*' must not carry a second line: "\r\n" is one Character, so bytes are checked.
        let patterns = CommandPolicy(["LED=*"])
        #expect(patterns.allows("LED=42"))
        #expect(!patterns.allows("LED=1\r\nREBOOT"))
        #expect(!patterns.allows("LED=1\rREBOOT"))
        #expect(!patterns.allows("LED=1\u{0}"))
        // The regression: '*' matched ';' and controls, so LED=* let a second command through to
        // firmware that splits on ';'.
        #expect(!patterns.allows("LED=1;SIREN=OFF"))
        #expect(!patterns.allows("LED=1\tSIREN=OFF"))
        #expect(!patterns.allows("LED=1\u{85}SIREN=OFF"))
        #expect(!patterns.allows("LED=\u{1B}[2J"))
        #expect(patterns.allows("LED=50%") && patterns.allows("LED=rouge é") && patterns.allows("LED="))
        let between = CommandPolicy(["PWM=*,DUTY=*"])
        #expect(between.allows("PWM=10,DUTY=50"))
        #expect(!between.allows("PWM=10;X,DUTY=50"))
        #expect(!between.allows("PWM=10,DUTY=5;REBOOT"))
        let custom = CommandPolicy(["LED=*"], separators: ["|", ";"])
        #expect(!custom.allows("LED=1|REBOOT"))
        let json = CommandPolicy(["{\"led\":*}"], separators: JSONLineDecoder().commandSeparators)
        #expect(json.allows("{\"led\":1}"))
        #expect(!json.allows("{\"led\":1,\"siren\":\"off\"}"))
        #expect(config.topic(board: "front-door", levels: ["door"]) == "wiregate/house-1/front-door/door")
    }

    @Test func theExampleFileIsValid() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../config/wiregate.example.yaml")
        let config = try GatewayConfig.parse(
            yaml: String(contentsOfFile: url.standardizedFileURL.path, encoding: .utf8), file: url.path)
        #expect(config.boards.count >= 2)
    }

    /// The config the package installs runs as it is: no board named, the Arduino-class ones
    /// adopted, the gateway named after the host, nothing but the broker on localhost.
    @Test func thePackagedConfigRunsAsInstalled() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../deploy/debian/wiregate.yaml")
        let config = try GatewayConfig.parse(
            yaml: String(contentsOfFile: url.standardizedFileURL.path, encoding: .utf8), file: url.path,
            defaultGatewayID: "pi-hall")
        #expect(config.boards.isEmpty && config.discovery.adoptUnknown && config.adoptTemplate?.protocolName == "kv")
        #expect(
            config.gateway.id == "pi-hall" && config.gateway.idIsDefault
                && config.gateway.stateDirectory == "/var/lib/wiregate")
        #expect(
            config.mqtt.host == "127.0.0.1" && config.mqtt.port == 1883 && config.mqtt.passwordFile == nil
                && config.backend == nil)
        // Not the chips of Zigbee and Z-Wave sticks.
        #expect(config.discovery.usbIDs.allows(.init(vendorID: "2341", productID: "0043", portPath: "1-1")))
        #expect(config.discovery.usbIDs.allows(.init(vendorID: "1a86", productID: "7523", portPath: "1-1")))
        #expect(!config.discovery.usbIDs.allows(.init(vendorID: "10c4", productID: "ea60", portPath: "1-1")))
        #expect(!config.discovery.usbIDs.allows(.init(vendorID: "0403", productID: "6001", portPath: "1-1")))
        #expect(config.files.map(\.key) == ["gateway.state_dir"])
    }

    /// Without gateway.id, the host name names the gateway: a clean level, never a non-name.
    @Test func theGatewayIdComesFromTheHostNameUnlessNamed() throws {
        #expect(GatewayConfig.gatewayID(fromHostName: "Pi-Hall.lan") == "Pi-Hall")
        #expect(GatewayConfig.gatewayID(fromHostName: "gw") == "gw")
        for name in ["(none)", "localhost", "localhost.localdomain", ""] {
            #expect(GatewayConfig.gatewayID(fromHostName: name) == nil, "\(name)")
        }
        for name in ["a+b", "#", "$SYS"] {
            let id = GatewayConfig.gatewayID(fromHostName: name)
            #expect(id == nil || Topic.problem(inConfiguredLevel: id!) == nil, "\(name): \(String(describing: id))")
        }
        #expect(GatewayConfig.isGenericHostName("raspberrypi") && !GatewayConfig.isGenericHostName("pi-hall"))
        // No gateway section at all, or an empty one: the default id and state directory.
        for gateway in ["", "gateway:\n"] {
            let config = try GatewayConfig.parse(
                yaml: gateway + "mqtt: {}\nunknown_boards: adopt\ndefaults: { protocol: kv }\nboards: []\n",
                file: "t", defaultGatewayID: "pi-hall")
            #expect(config.gateway == .init(id: "pi-hall", stateDirectory: "/var/lib/wiregate", idIsDefault: true))
        }
        let named = try GatewayConfig.parse(yaml: Self.valid, file: "t", defaultGatewayID: "pi-hall")
        #expect(named.gateway.id == "house-1" && !named.gateway.idIsDefault)
    }

    @Test func relativeFilePathsAreRefused() throws {
        let error = try #require(
            self.error(Self.valid.replacingOccurrences(of: "/etc/wiregate/mqtt.pass", with: "mqtt.pass")))
        #expect(error.path == "mqtt.password_file" && error.message.contains("must be an absolute path"), "\(error)")
    }

    @Test func unknownKeyNamesPathLineAndSuggestion() throws {
        let yaml = Self.valid.replacingOccurrences(of: "    baud: 115200", with: "    baud: 115200\n    prtocol: kv")
        let error = try #require(self.error(yaml))
        #expect(error.path == "boards[0].prtocol")
        #expect(error.line == 7)
        #expect(error.message.contains("did you mean 'protocol'"))
        #expect(error.description.hasPrefix("test.yaml:7:5: boards[0].prtocol: unknown key"))
    }

    @Test func wrongTypeNamesPathAndLine() throws {
        let error = try #require(self.error(Self.valid.replacingOccurrences(of: "baud: 115200", with: "baud: fast")))
        #expect(error.path == "boards[0].baud")
        #expect(error.line == 6)
        #expect(error.message == "expected a whole number, found 'fast'")
        let port = try #require(self.error(Self.valid.replacingOccurrences(of: "port: 1883", with: "port: 70000")))
        #expect(port.path == "mqtt.port")
        #expect(port.message.contains("out of range"))
    }

    @Test func missingProtocol() throws {
        let error = try #require(self.error(Self.valid.replacingOccurrences(of: "    protocol: kv\n", with: "")))
        #expect(error.path == "boards[0].protocol")
        #expect(error.message == "is required but missing")
        #expect(error.line == 4)
    }

    @Test func unknownProtocolListsTheKnownOnes() throws {
        let error = try #require(
            self.error(Self.valid.replacingOccurrences(of: "protocol: kv", with: "protocol: modbus")))
        #expect(error.path == "boards[0].protocol")
        #expect(error.message == "unknown protocol 'modbus' (expected one of kv, json, mysensors, influx, raw)")
    }

    @Test func badTopicTemplate() throws {
        let yaml = Self.valid.replacingOccurrences(
            of: "protocol: kv", with: "protocol: json\n    options: { topic: \"{sensor/x\" }")
        let error = try #require(self.error(yaml))
        #expect(error.path == "boards[0].options.topic")
        #expect(error.line == 8)
        #expect(error.message == "bad topic template: '{' without a matching '}'")
        let wildcard = try #require(
            self.error(
                Self.valid.replacingOccurrences(
                    of: "protocol: kv", with: "protocol: json\n    options: { topic: \"a/+/{id}\" }")))
        #expect(wildcard.message.contains("wildcard"))
    }

    @Test func optionsOfAnotherProtocolAreRefused() throws {
        let yaml = Self.valid.replacingOccurrences(
            of: "protocol: kv", with: "protocol: kv\n    options: { prefix: mysensors }")
        let error = try #require(self.error(yaml))
        #expect(error.path == "boards[0].options.prefix")
    }

    @Test func badBaseTopicAndNames() throws {
        #expect(
            try #require(
                self.error(Self.valid.replacingOccurrences(of: "base_topic: wiregate", with: "base_topic: \"a/#\""))
            ).path == "mqtt.base_topic")
        #expect(
            try #require(self.error(Self.valid.replacingOccurrences(of: "name: front-door", with: "name: front/door")))
                .path == "boards[0].name")
        #expect(
            try #require(self.error(Self.valid.replacingOccurrences(of: "id: house-1", with: "id: \"+\""))).path
                == "gateway.id")
    }

    @Test func inlinePasswordIsRefusedWithAHint() throws {
        let error = try #require(
            self.error(Self.valid.replacingOccurrences(of: "username: gw,", with: "username: gw, password: hunter2,")))
        #expect(error.path == "mqtt.password")
        #expect(error.message.contains("password_file"))
        #expect(!error.description.contains("hunter2"))
    }

    @Test func duplicateBoardsAndBadValues() throws {
        let twice = Self.valid + "\n  - { name: front-door, match: { path: /dev/ttyACM1 }, protocol: raw }"
        #expect(try #require(self.error(twice)).message.contains("used twice"))
        #expect(
            try #require(self.error(Self.valid.replacingOccurrences(of: "baud: 115200", with: "baud: 115201"))).message
                .contains("not a baud rate"))
        #expect(
            try #require(self.error(Self.valid.replacingOccurrences(of: "door: critical", with: "door: urgent"))).path
                == "boards[0].classes.door")
        #expect(
            try #require(self.error(Self.valid.replacingOccurrences(of: "/dev/ttyACM0", with: "ttyACM0"))).path
                == "boards[0].match.path")
    }

    @Test func latestIsForTelemetryOnly() throws {
        let ok = try GatewayConfig.parse(
            yaml: Self.valid.replacingOccurrences(
                of: "    commands:", with: "    latest: [ battery, \"env/*\" ]\n    commands:"), file: "t")
        #expect(ok.boards[0].isLatest("battery") && ok.boards[0].isLatest("env/t") && !ok.boards[0].isLatest("door"))
        let error = try #require(
            self.error(
                Self.valid.replacingOccurrences(of: "    commands:", with: "    latest: [ door ]\n    commands:")))
        #expect(error.path == "boards[0].latest[0]")
        #expect(error.message.contains("critical"))
    }

    @Test func brokenYAMLGivesALine() throws {
        let error = try #require(self.error("gateway: { id: x\nmqtt: [\n"))
        #expect(error.line != nil)
        #expect(error.message.hasPrefix("not valid YAML"))
    }

    @Test func tlsSection() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("wiregate-tls-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for name in ["ca.crt", "gw.crt", "gw.key", "mqtt.pass"] {
            try "x\n".write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let path = { (name: String) in directory.appendingPathComponent(name).path }
        func mqtt(_ tls: String) -> String {
            Self.valid.replacingOccurrences(of: "port: 1883, ", with: "")
                .replacingOccurrences(of: "/etc/wiregate/mqtt.pass", with: path("mqtt.pass"))
                .replacingOccurrences(of: "password_file:", with: "tls: { \(tls) }, password_file:")
        }
        let config = try GatewayConfig.parse(
            yaml: mqtt(
                "ca_file: \(path("ca.crt")), cert_file: \(path("gw.crt")), key_file: \(path("gw.key")), server_name: broker.house.lan"
            ), file: "t")
        #expect(
            config.mqtt.tls
                == GatewayConfig.MQTT.TLS(
                    caFile: path("ca.crt"), certFile: path("gw.crt"), keyFile: path("gw.key"),
                    serverName: "broker.house.lan"))
        #expect(config.mqtt.port == 8883, "TLS's port unless one is given")
        #expect(try GatewayConfig.parse(yaml: Self.valid, file: "t").mqtt.tls == nil)

        let insecure = try #require(self.error(mqtt("ca_file: \(path("ca.crt")), insecure: true")))
        #expect(insecure.path == "mqtt.tls.insecure" && insecure.message.contains("always verified"), "\(insecure)")
        let lonelyCertificate = try #require(self.error(mqtt("cert_file: \(path("gw.crt"))")))
        #expect(
            lonelyCertificate.path == "mqtt.tls.cert_file" && lonelyCertificate.message.contains("key_file"),
            "\(lonelyCertificate)")
        // Parsing reads no file: each file is named with the place that names it, and checked
        // where files are read (ConfigFileCheckTests).
        #expect(
            config.files.map(\.key) == [
                "gateway.state_dir", "mqtt.password_file", "mqtt.tls.ca_file", "mqtt.tls.cert_file", "mqtt.tls.key_file"
            ])
        #expect(config.files.map(\.role) == [.directory, .secret, .certificate, .certificate, .secret])
        let missingCA = try GatewayConfig.parse(yaml: mqtt("ca_file: \(path("nope.crt"))"), file: "t")
        #expect(missingCA.files.first { $0.key == "mqtt.tls.ca_file" }?.path == path("nope.crt"))
        #expect(missingCA.files.first { $0.key == "mqtt.tls.ca_file" }?.line == 2)
        #expect(try #require(self.error(mqtt("server_name: \"a b\""))).path == "mqtt.tls.server_name")

    }

    /// A first-hour config holds several mistakes: all of them are reported at once, in file order.
    @Test func everyMistakeIsReportedAtOnce() throws {
        let yaml = """
            gateway: { id: "a/b" }
            mqtt: { port: 99999, pasword_file: x }
            boards:
              - { name: a, match: { path: /dev/ttyACM0 }, protocol: raw, baud: lots }
              - { name: b, match: { path: /dev/ttyACM1 }, protocol: nope }
              - { name: c, match: { path: /dev/ttyACM2 }, protocol: kv }
            backend: { url: "ftp://x" }
            """
        let result = GatewayConfig.parseReportingAll(yaml: yaml, file: "test.yaml")
        #expect(result.config == nil)
        #expect(
            result.problems.map(\.path) == [
                "gateway.id", "mqtt.pasword_file", "boards[0].baud", "boards[1].protocol", "backend.url"
            ],
            "\(result.problems)")
        #expect(result.problems.map(\.line) == [1, 2, 4, 5, 7])
        // The first is what `parse` throws.
        #expect(self.error(yaml) == result.problems.first)
        // A valid document has none, and its config.
        let valid = GatewayConfig.parseReportingAll(yaml: Self.valid, file: "t")
        #expect(valid.problems.isEmpty && valid.config != nil)
    }

    /// `wiregate init`'s text is a valid config whatever the names and paths hold: each value is quoted.
    @Test func startingConfigQuotesWhatItIsGiven() throws {
        var starting = StartingConfig(gatewayID: "house-1")
        starting.host = "broker.lan"
        starting.port = 8883
        starting.tlsCAFile = "/etc/wiregate/ca #1.crt"
        starting.boards = [.init(name: "front-door", match: BoardMatch(path: "/run/demo/board: {x}, #y"))]
        let config = try GatewayConfig.parse(yaml: starting.yaml, file: "t")
        #expect(config.gateway.id == "house-1" && config.mqtt.host == "broker.lan" && config.mqtt.port == 8883)
        #expect(config.mqtt.tls?.caFile == "/etc/wiregate/ca #1.crt")
        #expect(config.boards.map(\.name) == ["front-door"])
        #expect(config.boards[0].match.path == "/run/demo/board: {x}, #y")
        #expect(config.discovery.adoptUnknown && config.adoptTemplate?.protocolName == "kv")
        // With nothing plugged in, it is still a config that runs: every board adopted.
        #expect(try GatewayConfig.parse(yaml: StartingConfig(gatewayID: "h").yaml, file: "t").boards.isEmpty)

        // Plugged-in devices: allowed ones by serial, else port; others (a CP210x Zigbee stick) left out.
        let devices = [
            TTYDevice(
                node: "/dev/ttyACM0", sysPath: "/sys/a",
                usb: .init(vendorID: "2341", productID: "0043", serial: "A1B2", portPath: "1-1")),
            TTYDevice(
                node: "/dev/ttyUSB0", sysPath: "/sys/b",
                usb: .init(vendorID: "1a86", productID: "7523", portPath: "1-2")),
            TTYDevice(
                node: "/dev/ttyUSB1", sysPath: "/sys/c",
                usb: .init(vendorID: "046d", productID: "c52b", portPath: "1-3")),
            TTYDevice(
                node: "/dev/ttyUSB2", sysPath: "/sys/d",
                usb: .init(vendorID: "10c4", productID: "ea60", serial: "ZB1", portPath: "1-4"))
        ]
        var found = StartingConfig(gatewayID: "h")
        found.addDevices(devices)
        #expect(
            found.boards == [
                .init(name: "A1B2", match: BoardMatch(serial: "A1B2")),
                .init(name: "usb-1-2", match: BoardMatch(usbPath: "1-2"))
            ])
        let written = try GatewayConfig.parse(yaml: found.yaml, file: "t")
        #expect(written.boards.map(\.match) == found.boards.map(\.match))
        // The written config keeps the same ids: the stick is not adopted later either.
        #expect(!written.discovery.usbIDs.allows(.init(vendorID: "10c4", productID: "ea60", portPath: "1-4")))
        #expect(written.discovery.usbIDs.allows(.init(vendorID: "1a86", productID: "7523", portPath: "1-2")))
    }

    @Test func durations() {
        #expect(ConfigNode.parseDuration("500ms") == .milliseconds(500))
        #expect(ConfigNode.parseDuration("2s") == .seconds(2))
        #expect(ConfigNode.parseDuration("5m") == .seconds(300))
        #expect(ConfigNode.parseDuration("1.5") == .milliseconds(1500))
        #expect(ConfigNode.parseDuration("soon") == nil)
        #expect(ConfigNode.parseDuration("-1s") == nil)
    }
}
