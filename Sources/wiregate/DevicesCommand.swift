import ArgumentParser
import Foundation
import Wiregate
import WiregateCore

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract:
            "List the USB serial devices, who they are, which board entry they match (or why none), and whether the daemon has them open.",
        discussion: "Boards configured at a fixed path (match.path) are listed too: they are opened without udev."
    )

    @OptionGroup var options: ConfigOption
    @OptionGroup var output: JSONOutputOption

    struct Row: Codable {
        /// How the board is found.
        enum Kind: String, Codable {
            /// A USB device udev reports.
            case usb
            /// A board entry's `match.path`, opened as it is (a UART, a simulated board).
            case path
        }

        var kind: Kind
        var node: String
        /// The USB device's fields: nil for a fixed path.
        var sysPath: String?
        var vendorID: String?
        var productID: String?
        var serial: String?
        var manufacturer: String?
        var product: String?
        var usbPath: String?
        var identity: BoardIdentity?
        /// The board it is, or nil with `reason`.
        var board: String?
        var reason: String?
        var openByDaemon: Bool
        /// What Home Assistant is told of the board: nil without `homeassistant:`.
        var entities: [AnnouncedEntity]? = nil
    }

    /// One entity a board announces to Home Assistant.
    struct AnnouncedEntity: Codable {
        var component: String
        var name: String
        /// The entity id Home Assistant gives it at first (`binary_sensor.front_door_door`).
        var entityID: String
        var uniqueID: String
        /// The board's key it shows; nil for one the gateway makes (connectivity, alarm siren).
        var key: String?
    }

    /// Per board, what it announces: what the config makes at the start, and the keys the
    /// daemon recorded as announced (from the journal, read only).
    func announcedEntities(_ config: GatewayConfig) -> [String: [AnnouncedEntity]]? {
        guard let catalog = DiscoveryCatalog(config: config, version: WiregateVersion.current) else { return nil }
        var records: [DiscoveryRecord] = []
        do {
            records = try Journal.discoveryRecords(stateDirectory: config.gateway.stateDirectory)
        } catch {
            FileHandle.standardError.write(
                Data("warning: cannot read the keys announced from the journal: \(error)\n".utf8))
        }
        let plan = DiscoveryPlan(catalog: catalog, records: records, boards: config.boards)
        var byBoard: [String: [AnnouncedEntity]] = [:]
        for entity in plan.entities {
            guard let board = entity.board else { continue }
            byBoard[board, default: []].append(
                AnnouncedEntity(
                    component: entity.component.rawValue, name: entity.fields["name"]?.stringValue ?? "",
                    entityID: entity.component.rawValue + "."
                        + (entity.fields["object_id"]?.stringValue ?? entity.objectID),
                    uniqueID: entity.uniqueID, key: entity.key))
        }
        return byBoard
    }

    func run() throws {
        let config = try loadConfigOrExit(options.config)
        let fixedPaths = config.boards.filter { $0.match.path != nil }
        let devices: [TTYDevice]
        do {
            devices = try DeviceWatcher.presentTTYs()
        } catch {
            // The boards at fixed paths are still worth showing: the daemon opens them without udev.
            guard !fixedPaths.isEmpty else {
                FileHandle.standardError.write(Data("error: cannot list devices through udev: \(error)\n".utf8))
                throw ExitCode(1)
            }
            FileHandle.standardError.write(Data("warning: cannot list devices through udev: \(error)\n".utf8))
            devices = []
        }
        let daemon = (try? DaemonState.read(stateDirectory: config.gateway.stateDirectory)).flatMap {
            $0.isRunning ? $0 : nil
        }
        let openNodes = Set(daemon?.nodes?.values.map { $0 } ?? [])
        let matcher = DeviceMatcher(config: config)
        var rows = devices.compactMap { device -> Row? in
            guard let usb = device.usb, let identity = BoardIdentity(device: device) else { return nil }
            var board: String?, reason: String?
            switch matcher.decide(device) {
            case .board(let index): board = config.boards[index].name
            case .adopt(let name, _): board = name; reason = "adopted (unknown_boards: adopt)"
            case .awaitHello: reason = "decided by its hello line (\(config.discovery.hello)) once the daemon opens it"
            case .ignore(let why), .refuse(let why): reason = why
            }
            // The daemon's own view wins: it has read the hello line.
            if let daemon, let named = daemon.nodes?.first(where: { $0.value == device.node })?.key {
                board = named
                reason = nil
            }
            return Row(
                kind: .usb, node: device.node, sysPath: device.sysPath, vendorID: usb.vendorID,
                productID: usb.productID,
                serial: usb.serial, manufacturer: usb.manufacturer, product: usb.product, usbPath: usb.portPath,
                identity: identity, board: board, reason: reason, openByDaemon: openNodes.contains(device.node))
        }
        for board in fixedPaths {
            let path = board.match.path!
            let open = daemon?.nodes?[board.name] == path
            let exists = FileManager.default.fileExists(atPath: path)
            rows.append(
                Row(
                    kind: .path, node: path, board: board.name,
                    reason: exists
                        ? "fixed path (match.path)"
                        : "fixed path (match.path): nothing there yet, reopened until it exists",
                    openByDaemon: open))
        }
        let announced = announcedEntities(config)
        if let announced {
            for index in rows.indices { rows[index].entities = rows[index].board.map { announced[$0] ?? [] } }
        }
        if output.json {
            try printJSON(rows)
            return
        }
        if !rows.contains(where: { $0.kind == .usb }) { print("no USB serial device found") }
        for row in rows {
            guard let vendorID = row.vendorID, let productID = row.productID, let usbPath = row.usbPath,
                let identity = row.identity
            else {
                print(
                    "\(row.node)  board: \(row.board ?? "none")\(row.reason.map { " (\($0))" } ?? "")\(row.openByDaemon ? ", open by the daemon" : "")"
                )
                continue
            }
            print(
                "\(row.node)  \(vendorID):\(productID)  serial \(row.serial ?? "-")  usb_path \(usbPath)  identity \(identity)"
            )
            if let product = row.product ?? row.manufacturer { print("    \(product)") }
            print(
                "    board: \(row.board ?? "none")\(row.reason.map { " (\($0))" } ?? "")\(row.openByDaemon ? ", open by the daemon" : "")"
            )
            if row.board == nil, row.reason?.hasPrefix("no board entry matches") == true {
                // Ready to paste under `boards:`: only the name is left to choose.
                let key = identity.source == .serial ? "serial" : "usb_path"
                print("    to add it:  - { name: NAME, match: { \(key): \"\(identity.value)\" }, protocol: kv }")
            }
        }
        if let announced, let prefix = config.homeAssistant?.prefix {
            print("\nHome Assistant (discovery on \(prefix)/), per board:")
            for board in announced.keys.sorted() {
                print("  \(board)")
                for entity in announced[board] ?? [] {
                    print("    \(entity.entityID)  \"\(entity.name)\"\(entity.key.map { "  key \($0)" } ?? "")")
                }
            }
        }
    }
}
