/// What the kernel (sysfs) and udev say of one tty: the facts identity and matching work from.
///
/// Built by the discovery from udev; pure data here, so that matching can be tested
/// without a device.
public struct TTYDevice: Sendable, Hashable, Codable {
    /// The device node, e.g. `/dev/ttyACM0`.
    public var node: String
    /// The tty's sysfs path, e.g. `/sys/devices/pci0000:00/…/1-1.2:1.0/tty/ttyACM0`: the key of a plugged-in device.
    public var sysPath: String
    /// The USB device the tty belongs to; nil for a tty with no USB parent (never a board).
    public var usb: USB?

    /// What the tty's USB device says of itself, from sysfs (udev's properties where an attribute lacks).
    public struct USB: Sendable, Hashable, Codable {
        /// `idVendor`, four lowercase hex digits, e.g. `2341`.
        public var vendorID: String
        /// `idProduct`, four lowercase hex digits, e.g. `0043`.
        public var productID: String
        /// `serial`, when the device has one (genuine Arduinos and FTDI do; most CH340 do not).
        public var serial: String?
        /// `manufacturer`, the vendor's name as the device reports it; shown by `wiregate devices`, never matched.
        public var manufacturer: String?
        /// `product`, the device's name as it reports it (`Arduino Uno`); shown, never matched.
        public var product: String?
        /// The USB device's kernel name, e.g. `1-1.2` (bus 1, port 1, then port 2 of a hub): the
        /// same while the cable stays in its socket, and what `dmesg` prints on plug-in.
        public var portPath: String

        /// The facts of a USB device; ids are lowercased, and an empty serial is taken as none.
        /// - Parameters:
        ///   - vendorID: `idVendor`, four hex digits.
        ///   - productID: `idProduct`, four hex digits.
        ///   - serial: the serial number, nil or empty when it has none.
        ///   - manufacturer: the vendor's name, if reported.
        ///   - product: the device's name, if reported.
        ///   - portPath: the USB device's kernel name, such as `1-1.2`.
        public init(
            vendorID: String, productID: String, serial: String? = nil, manufacturer: String? = nil,
            product: String? = nil, portPath: String
        ) {
            self.vendorID = vendorID.lowercased()
            self.productID = productID.lowercased()
            self.serial = serial.flatMap { $0.isEmpty ? nil : $0 }
            self.manufacturer = manufacturer
            self.product = product
            self.portPath = portPath
        }
    }

    /// A tty as discovery found it.
    /// - Parameters:
    ///   - node: the device node, such as `/dev/ttyACM0`.
    ///   - sysPath: the tty's sysfs path.
    ///   - usb: its USB device, nil when it has no USB parent.
    public init(node: String, sysPath: String, usb: USB?) {
        self.node = node
        self.sysPath = sysPath
        self.usb = usb
    }
}

/// Who a board is, and how that was found out, in order of preference.
public struct BoardIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Where an identity comes from; the raw value is the `match:` key that takes it.
    public enum Source: String, Sendable, Codable {
        /// The USB serial number.
        case serial
        /// The name in the hello line the firmware prints after reset.
        case hello
        /// The USB port path: two boards without serial or hello stay apart by their sockets.
        case usbPath = "usb_path"
    }

    /// Where `value` was found.
    public var source: Source
    /// The serial number, hello name or port path, as found (not yet sanitised as a topic level).
    public var value: String

    /// An identity found in `source`.
    /// - Parameters:
    ///   - source: where it was found.
    ///   - value: what was found there.
    public init(source: Source, value: String) {
        self.source = source
        self.value = value
    }

    /// From what the device itself says: its serial number, else its port path (a hello line,
    /// when there is one, is read from the port and wins over the port path: see `with(hello:)`).
    public init?(device: TTYDevice) {
        guard let usb = device.usb else { return nil }
        if let serial = usb.serial {
            self.init(source: .serial, value: serial)
        } else {
            self.init(source: .usbPath, value: usb.portPath)
        }
    }

    /// The identity once a hello line named the board: it wins over the port path, not over a serial.
    public func with(hello name: String?) -> BoardIdentity {
        guard let name, source == .usbPath else { return self }
        return BoardIdentity(source: .hello, value: name)
    }

    /// The name an adopted board gets: one clean topic level.
    public var adoptedName: String {
        let prefix = source == .usbPath ? "usb-" : ""
        return Topic.sanitisedLevel(prefix + value) ?? "unnamed"
    }

    /// The source and the value, as in `serial 8573…` or `usb_path 1-1.2`.
    public var description: String { "\(source.rawValue) \(value)" }
}
