import ArgumentParser
import Foundation
import Wiregate
import WiregateCore

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the USB serial devices, who they are, which board entry they match (or why none), and whether the daemon has them open."
    )

    @OptionGroup var options: ConfigOption
    @OptionGroup var output: JSONOutputOption

    struct Row: Codable {
        var node: String
        var sysPath: String
        var vendorID: String
        var productID: String
        var serial: String?
        var manufacturer: String?
        var product: String?
        var usbPath: String
        var identity: BoardIdentity
        /// The board it is, or nil with `reason`.
        var board: String?
        var reason: String?
        var openByDaemon: Bool
    }

    func run() throws {
        let config = try loadConfigOrExit(options.config)
        let devices: [TTYDevice]
        do {
            devices = try DeviceWatcher.presentTTYs()
        } catch {
            FileHandle.standardError.write(Data("error: cannot list devices through udev: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let daemon = (try? DaemonState.read(stateDirectory: config.gateway.stateDirectory)).flatMap { $0.isRunning ? $0 : nil }
        let openNodes = Set(daemon?.nodes?.values.map { $0 } ?? [])
        let matcher = DeviceMatcher(config: config)
        let rows = devices.compactMap { device -> Row? in
            guard let usb = device.usb, let identity = BoardIdentity(device: device) else { return nil }
            var board: String?, reason: String?
            switch matcher.decide(device) {
            case .board(let index): board = config.boards[index].name
            case .adopt(let name): board = name; reason = "adopted (unknown_boards: adopt)"
            case .awaitHello: reason = "decided by its hello line (\(config.discovery.hello)) once the daemon opens it"
            case .ignore(let why), .refuse(let why): reason = why
            }
            // The daemon's own view wins: it has read the hello line.
            if let daemon, let named = daemon.nodes?.first(where: { $0.value == device.node })?.key {
                board = named
                reason = nil
            }
            return Row(node: device.node, sysPath: device.sysPath, vendorID: usb.vendorID, productID: usb.productID,
                       serial: usb.serial, manufacturer: usb.manufacturer, product: usb.product, usbPath: usb.portPath,
                       identity: identity, board: board, reason: reason, openByDaemon: openNodes.contains(device.node))
        }
        if output.json {
            try printJSON(rows)
            return
        }
        guard !rows.isEmpty else {
            print("no USB serial device found")
            return
        }
        for row in rows {
            print("\(row.node)  \(row.vendorID):\(row.productID)  serial \(row.serial ?? "-")  usb_path \(row.usbPath)  identity \(row.identity)")
            if let product = row.product ?? row.manufacturer { print("    \(product)") }
            print("    board: \(row.board ?? "none")\(row.reason.map { " (\($0))" } ?? "")\(row.openByDaemon ? ", open by the daemon" : "")")
            if row.board == nil, row.reason?.hasPrefix("no board entry matches") == true {
                // Ready to paste under `boards:`: only the name is left to choose.
                let key = row.identity.source == .serial ? "serial" : "usb_path"
                print("    to add it:  - { name: NAME, match: { \(key): \"\(row.identity.value)\" }, protocol: kv }")
            }
        }
    }
}
