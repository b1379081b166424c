/// A board entry's `match:`: every key given must hold.
public struct BoardMatch: Sendable, Hashable {
    /// A fixed device path: no discovery, the port is reopened until it exists.
    public var path: String?
    /// The USB serial number (`serial`), compared exactly.
    public var serial: String?
    /// The hello line's name.
    public var hello: String?
    /// The USB port path, e.g. `1-1.2`.
    public var usbPath: String?
    /// Four lowercase hex digits each.
    public var vendorID: String?
    /// Four lowercase hex digits, compared with the device's `idProduct`.
    public var productID: String?

    /// A match on the given keys; with none given it matches every USB tty (the config refuses that).
    /// - Parameters:
    ///   - path: a fixed device path, meant to be given alone.
    ///   - serial: the USB serial number.
    ///   - hello: the name in the hello line.
    ///   - usbPath: the USB port path.
    ///   - vendorID: the USB vendor id, four lowercase hex digits.
    ///   - productID: the USB product id, four lowercase hex digits.
    public init(
        path: String? = nil, serial: String? = nil, hello: String? = nil, usbPath: String? = nil,
        vendorID: String? = nil, productID: String? = nil
    ) {
        self.path = path
        self.serial = serial
        self.hello = hello
        self.usbPath = usbPath
        self.vendorID = vendorID
        self.productID = productID
    }

    /// Whether the board is found through udev rather than at a fixed path.
    public var needsDiscovery: Bool { path == nil }

    /// Whether this entry can only be decided once the port has said hello.
    public var needsHello: Bool { hello != nil }

    /// Whether `device` (with the name of its hello line, if it printed one) is this board.
    /// A `path` entry is not discovered (see `DeviceMatcher`): only its path is compared.
    public func matches(_ device: TTYDevice, hello helloName: String?) -> Bool {
        if let path { return path == device.node }
        guard let usb = device.usb else { return false }
        if let serial, serial != usb.serial { return false }
        if let usbPath, usbPath != usb.portPath { return false }
        if let vendorID, vendorID != usb.vendorID { return false }
        if let productID, productID != usb.productID { return false }
        if let hello, hello != helloName { return false }
        return true
    }
}

/// USB vendor:product pairs that are boards; `*` as the product takes all of a vendor's.
public struct USBAllowList: Sendable, Hashable {
    /// The pairs, in the order written; a nil product stands for all of the vendor's.
    public var entries: [(vendorID: String, productID: String?)] { pairs.map { ($0.vendor, $0.product) } }
    private var pairs: [Pair]

    private struct Pair: Hashable {
        var vendor: String
        var product: String?
    }

    /// Arduino (2341, 2a03: every product), CH340 (1a86:7523), FTDI FT232 (0403:6001), CP210x (10c4:ea60).
    public static let defaults = try! USBAllowList(["2341:*", "2a03:*", "1a86:7523", "0403:6001", "10c4:ea60"])

    /// What a config that starts on its own allows (the package's, `wiregate init`'s): Arduino and
    /// CH340 only. FTDI and CP210x chips are on Zigbee and Z-Wave sticks, GPS receivers and UPS
    /// cables too, which a gateway started at install must not take over.
    public static let arduinoOnly = try! USBAllowList(["2341:*", "2a03:*", "1a86:7523"])

    /// The entries as the config writes them (`vvvv:pppp`, `vvvv:*`).
    public var configText: [String] { pairs.map { "\($0.vendor):\($0.product ?? "*")" } }

    /// - Parameter entries: `vvvv:pppp` or `vvvv:*`, hex.
    /// - Throws: `Problem` naming the first entry that is not such a pair.
    public init(_ entries: [String]) throws(Problem) {
        pairs = []
        for entry in entries {
            let parts = entry.lowercased().split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, Self.isUSBID(parts[0]), parts[1] == "*" || Self.isUSBID(parts[1]) else {
                throw Problem(entry: entry)
            }
            pairs.append(Pair(vendor: String(parts[0]), product: parts[1] == "*" ? nil : String(parts[1])))
        }
    }

    /// An entry that is not `vvvv:pppp` or `vvvv:*` (four hex digits each).
    public struct Problem: Error, Sendable {
        /// The entry as written in the config.
        public var entry: String
    }

    static func isUSBID(_ text: Substring) -> Bool {
        text.count == 4 && text.allSatisfy(\.isHexDigit)
    }

    /// Whether a USB device is taken as a board.
    /// - Parameter usb: the device's USB facts; only its vendor and product ids are compared.
    /// - Returns: true when an entry names its vendor and its product, or all of the vendor's.
    public func allows(_ usb: TTYDevice.USB) -> Bool {
        pairs.contains { $0.vendor == usb.vendorID && ($0.product == nil || $0.product == usb.productID) }
    }

    /// Whether both hold the same pairs in the same order.
    public static func == (lhs: USBAllowList, rhs: USBAllowList) -> Bool { lhs.pairs == rhs.pairs }
    /// Hashes the pairs, in order.
    public func hash(into hasher: inout Hasher) { hasher.combine(pairs) }
}

/// What discovery decided for one tty.
public enum DeviceDecision: Sendable, Hashable {
    /// The board entry at this index of `boards:` matched.
    case board(index: Int)
    /// No entry matched and `unknown_boards: adopt`: a board named from its identity, with `defaults:`.
    /// `identity` is what named it: it stays the board's in Home Assistant once the config names it.
    case adopt(name: String, identity: BoardIdentity)
    /// Not a board: the reason, for `wiregate devices` and the log.
    case ignore(reason: String)
    /// Would be adopted, but under a name it must never have (a configured board's): refused,
    /// and worth a warning (a device pretending to be another board).
    case refuse(reason: String)
    /// An entry may match once the port has said hello (or not): read it first.
    case awaitHello
}

/// Decides which board entry a tty is: the first entry that matches wins.
public struct DeviceMatcher: Sendable {
    /// The `match:` of each entry of `boards:`, in order: an index here is the board's index.
    public var matches: [BoardMatch]
    /// `discovery.usb_ids`: a USB tty not in it is never a board, matched or adopted.
    public var allowList: USBAllowList
    /// `unknown_boards: adopt`: whether an allowed device that no entry matches becomes a board.
    public var adoptUnknown: Bool
    /// Names an adopted board can never take: the configured boards'.
    public var reservedNames: Set<String>

    /// A matcher over the configured entries.
    /// - Parameters:
    ///   - matches: the entries' `match:`, in config order.
    ///   - allowList: the USB ids that may be boards.
    ///   - adoptUnknown: whether unmatched allowed devices are adopted.
    ///   - reservedNames: the configured boards' names, which no adopted board may take; empty by default.
    public init(matches: [BoardMatch], allowList: USBAllowList, adoptUnknown: Bool, reservedNames: Set<String> = []) {
        self.matches = matches
        self.allowList = allowList
        self.adoptUnknown = adoptUnknown
        self.reservedNames = reservedNames
    }

    /// - Parameter hello: the name from the port's hello line; nil when it was not read (yet) or none came.
    /// - Parameter helloRead: whether the port was read for a hello line already.
    public func decide(_ device: TTYDevice, hello: String? = nil, helloRead: Bool = false) -> DeviceDecision {
        if let index = matches.firstIndex(where: { $0.path == device.node }) {
            // Its reader opens that path itself, with or without udev.
            return .ignore(reason: "board entry \(index + 1) has this fixed path")
        }
        guard let usb = device.usb else { return .ignore(reason: "no USB parent") }
        guard allowList.allows(usb) else {
            return .ignore(reason: "\(usb.vendorID):\(usb.productID) is not in discovery.usb_ids")
        }
        for (index, match) in matches.enumerated() where match.needsDiscovery {
            if match.needsHello && !helloRead {
                // Every other key of this entry holds: the hello line decides.
                var withoutHello = match
                withoutHello.hello = nil
                if withoutHello.matches(device, hello: nil) { return .awaitHello }
                continue
            }
            if match.matches(device, hello: hello) { return .board(index: index) }
        }
        guard adoptUnknown else { return .ignore(reason: "no board entry matches, and unknown_boards is ignore") }
        // An unknown board without a serial number may still name itself in a hello line.
        if usb.serial == nil && !helloRead { return .awaitHello }
        let identity = BoardIdentity(device: device)!.with(hello: hello)
        // A device whose serial number or hello line sanitises to a configured board's name would
        // get its topics and its commands while the real board is away, and then keep the real
        // board out as a second device: never.
        if reservedNames.contains(identity.adoptedName) {
            return .refuse(
                reason:
                    "its \(identity) names it '\(identity.adoptedName)', which is a configured board's name or reserved: not adopted"
            )
        }
        return .adopt(name: identity.adoptedName, identity: identity)
    }
}

extension BoardMatch: CustomStringConvertible {
    /// As written in the config: `path /dev/ttyACM0`, `serial 8573…, vid 2341`.
    public var description: String {
        [
            ("path", path), ("serial", serial), ("hello", hello), ("usb_path", usbPath), ("vid", vendorID),
            ("pid", productID)
        ]
        .compactMap { key, value in value.map { "\(key) \($0)" } }
        .joined(separator: ", ")
    }
}
