import Foundation

/// The config `wiregate init` writes: a broker, the boards plugged in now (each by what `devices`
/// shows: its serial number, else its USB port), boards at fixed paths, and everything else on its
/// default, with a comment saying where every key is described. Pure: the caller finds the devices
/// and writes the file.
public struct StartingConfig: Sendable {
    /// A board to name in the config.
    public struct Board: Sendable, Equatable {
        /// Its name in the config, the board's topic level: the identity an adopted board would get.
        public var name: String
        /// How it is found: its USB serial number, else its USB port path, else a fixed device path.
        public var match: BoardMatch

        /// A board entry.
        /// - Parameters:
        ///   - name: the board's name.
        ///   - match: how the board is found.
        public init(name: String, match: BoardMatch) {
            self.name = name
            self.match = match
        }
    }

    /// `gateway.id`: this gateway's topic level and event-id prefix.
    public var gatewayID: String
    /// `gateway.state_dir`, where the journal lives; `/var/lib/wiregate` unless set.
    public var stateDirectory = "/var/lib/wiregate"
    /// `mqtt.host`, the broker; the local one (`127.0.0.1`) unless set.
    public var host = "127.0.0.1"
    /// nil: MQTT's default for the transport (1883, or 8883 with TLS).
    public var port: Int?
    /// `mqtt.username`; nil leaves it out (an anonymous broker).
    public var username: String?
    /// `mqtt.password_file`; nil writes the key as a comment, for the user to fill in.
    public var passwordFile: String?
    /// `mqtt.tls.ca_file`; when both it and `tlsCertFile` are nil, no `tls:` section is written (plain TCP).
    public var tlsCAFile: String?
    /// `mqtt.tls.cert_file`, the gateway's client certificate; nil: none.
    public var tlsCertFile: String?
    /// `mqtt.tls.key_file`, the client certificate's key; written only inside a `tls:` section.
    public var tlsKeyFile: String?
    /// The `boards:` entries, in order; `addDevices(_:)` appends to it.
    public var boards: [Board] = []
    /// What every board speaks, named and adopted alike.
    public var protocolName = "kv"
    /// The USB ids taken as boards, written as `discovery.usb_ids`.
    public var usbIDs = USBAllowList.arduinoOnly

    /// A config for the gateway `gatewayID`, every other key on its default and no board yet.
    /// - Parameter gatewayID: the gateway's id, one topic level.
    public init(gatewayID: String) {
        self.gatewayID = gatewayID
    }

    /// The entries for the USB serial devices plugged in: the ones discovery's allow-list has,
    /// named by their identity (as an adopted board would be), skipping what is already named.
    public mutating func addDevices(_ devices: [TTYDevice]) {
        for device in devices {
            guard let usb = device.usb, usbIDs.allows(usb), let identity = BoardIdentity(device: device) else {
                continue
            }
            let match =
                identity.source == .serial ? BoardMatch(serial: identity.value) : BoardMatch(usbPath: identity.value)
            guard !boards.contains(where: { $0.match == match || $0.name == identity.adoptedName }) else { continue }
            boards.append(Board(name: identity.adoptedName, match: match))
        }
    }

    /// The YAML text. Every value the user or a device gave is written as a quoted scalar, so
    /// nothing in it (a `#`, a `:`, a leading `*`) changes the document's structure.
    public var yaml: String {
        var lines = [
            "# wiregate config, written by `wiregate init`. Check it after every edit with `wiregate check-config`.",
            "# Every key, with its default and what it does: /usr/share/doc/wiregate/wiregate.example.yaml",
            "",
            "gateway:",
            "  id: \(Self.quoted(gatewayID))",
            "  state_dir: \(Self.quoted(stateDirectory))",
            "",
            "mqtt:",
            "  host: \(Self.quoted(host))"
        ]
        if let port { lines.append("  port: \(port)") }
        if let username { lines.append("  username: \(Self.quoted(username))") }
        if let passwordFile {
            lines.append("  password_file: \(Self.quoted(passwordFile))   # install -m 0640 -g wiregate")
        } else {
            lines.append(
                "  # password_file: /etc/wiregate/mqtt.pass   # install -m 0640 -g wiregate; or WIREGATE_MQTT_PASSWORD")
        }
        if tlsCAFile != nil || tlsCertFile != nil {
            lines.append("  tls:")
            if let tlsCAFile { lines.append("    ca_file: \(Self.quoted(tlsCAFile))") }
            if let tlsCertFile { lines.append("    cert_file: \(Self.quoted(tlsCertFile))") }
            if let tlsKeyFile { lines.append("    key_file: \(Self.quoted(tlsKeyFile))") }
        }
        lines += [
            "",
            "metrics:",
            "  listen: 127.0.0.1:\(GatewayConfig.defaultMetricsPort)        # Prometheus metrics, on this machine only",
            "",
            "discovery:                      # the USB ids that are boards (FTDI 0403:6001 and CP210x 10c4:ea60 are also",
            "                                # Zigbee/Z-Wave sticks': add them only for boards that use them)",
            "  usb_ids: [ \(usbIDs.configText.map(Self.quoted).joined(separator: ", ")) ]",
            "",
            "unknown_boards: adopt           # a board plugged in later, not named below, is published under its identity",
            "defaults:",
            "  protocol: \(Self.quoted(protocolName))",
            ""
        ]
        if boards.isEmpty {
            lines.append(
                "boards: []                      # `wiregate devices` prints the entry to paste for each board")
        } else {
            lines.append("boards:                         # rename them at will: the name is the board's topic level")
            for board in boards {
                lines.append("  - name: \(Self.quoted(board.name))")
                lines.append("    match: { \(Self.matchText(board.match)) }")
                lines.append("    protocol: \(Self.quoted(protocolName))")
                lines.append(
                    "    # classes: { door: critical, \"*\": telemetry }   # which subtopics are intrusion events")
                lines.append(
                    "    # commands: [ \"SIREN=ON\", \"SIREN=OFF\" ]           # the lines MQTT may write to it")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func matchText(_ match: BoardMatch) -> String {
        var keys: [String] = []
        if let path = match.path { keys.append("path: \(quoted(path))") }
        if let serial = match.serial { keys.append("serial: \(quoted(serial))") }
        if let usbPath = match.usbPath { keys.append("usb_path: \(quoted(usbPath))") }
        return keys.joined(separator: ", ")
    }

    /// A YAML double-quoted scalar: JSON's string escapes are YAML's.
    static func quoted(_ text: String) -> String {
        let data = (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\\/", with: "/")
    }
}
