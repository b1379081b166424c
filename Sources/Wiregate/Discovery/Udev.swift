import CUdev
import Dispatch
import Foundation
import WiregateCore

/// libudev, for the ttys there are and the ones that come and go.
///
/// Identity is read from sysfs attributes of the tty's USB parent (`idVendor`,
/// `idProduct`, `serial`, …) rather than from udev properties (`ID_SERIAL`…): sysfs is
/// there even where no udev daemon fills the properties in (a container, this machine).
///
/// libudev is not thread-safe: every call on the handle, its enumerations and its monitors runs
/// on `queue`, one at a time (`@unchecked Sendable` rests on that).
final class Udev: @unchecked Sendable {
    private let handle: OpaquePointer
    private let queue = DispatchQueue(label: "wiregate.udev")

    init() throws(DiscoveryError) {
        guard let handle = udev_new() else { throw DiscoveryError("udev_new failed") }
        self.handle = handle
    }

    deinit { udev_unref(handle) }

    /// Every tty with a device node, in sysfs order. Blocks for the enumeration (milliseconds),
    /// on the udev queue behind any monitor event being read.
    func ttys() -> [TTYDevice] {
        queue.sync { enumerateTTYs() }
    }

    private func enumerateTTYs() -> [TTYDevice] {
        guard let enumerate = udev_enumerate_new(handle) else { return [] }
        defer { udev_enumerate_unref(enumerate) }
        udev_enumerate_add_match_subsystem(enumerate, "tty")
        udev_enumerate_scan_devices(enumerate)
        var devices: [TTYDevice] = []
        var entry = udev_enumerate_get_list_entry(enumerate)
        while let current = entry {
            if let sysPath = udev_list_entry_get_name(current),
                let device = udev_device_new_from_syspath(handle, sysPath)
            {
                if let tty = Self.tty(device) { devices.append(tty) }
                udev_device_unref(device)
            }
            entry = udev_list_entry_get_next(current)
        }
        return devices
    }

    /// The facts of one tty device; nil when it has no device node.
    static func tty(_ device: OpaquePointer) -> TTYDevice? {
        guard let node = udev_device_get_devnode(device).map(String.init(cString:)),
            let sysPath = udev_device_get_syspath(device).map(String.init(cString:))
        else { return nil }
        var usb: TTYDevice.USB?
        // The USB device, not the interface: the attributes live there. Not to be unreferenced (owned by the child).
        // sysfs first (always there); udev's properties where an attribute is missing (when a udev daemon runs).
        if let parent = udev_device_get_parent_with_subsystem_devtype(device, "usb", "usb_device"),
            let vendor = attribute(parent, "idVendor") ?? property(device, "ID_VENDOR_ID"),
            let product = attribute(parent, "idProduct") ?? property(device, "ID_MODEL_ID"),
            let portPath = udev_device_get_sysname(parent).map(String.init(cString:))
        {
            usb = TTYDevice.USB(
                vendorID: vendor, productID: product,
                serial: attribute(parent, "serial") ?? property(device, "ID_SERIAL_SHORT"),
                manufacturer: attribute(parent, "manufacturer") ?? property(device, "ID_VENDOR"),
                product: attribute(parent, "product") ?? property(device, "ID_MODEL"),
                portPath: portPath)
        }
        return TTYDevice(node: node, sysPath: sysPath, usb: usb)
    }

    private static func property(_ device: OpaquePointer, _ name: String) -> String? {
        udev_device_get_property_value(device, name).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    private static func attribute(_ device: OpaquePointer, _ name: String) -> String? {
        udev_device_get_sysattr_value(device, name).map {
            String(cString: $0).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// What a monitor reports.
    enum Change: Sendable {
        case added(TTYDevice)
        /// Only the sysfs path is known once a device is gone.
        case removed(sysPath: String)
    }

    /// Watches tty add, change and remove events from both netlink sources: `udev` (after the
    /// rules ran, when a udev daemon runs) and `kernel` (always there, also in containers).
    /// The same event may come from both: the consumer treats a known add as a no-op.
    /// The sockets are read from a dispatch source (epoll), no thread of our own.
    func changes() throws(DiscoveryError) -> AsyncStream<Change> {
        try queue.sync { Result { () throws(DiscoveryError) in try makeMonitors() } }.get()
    }

    /// On `queue`.
    private func makeMonitors() throws(DiscoveryError) -> AsyncStream<Change> {
        var monitors: [OpaquePointer] = []
        for source in ["udev", "kernel"] {
            guard let monitor = udev_monitor_new_from_netlink(handle, source) else { continue }
            udev_monitor_filter_add_match_subsystem_devtype(monitor, "tty", nil)
            guard udev_monitor_enable_receiving(monitor) >= 0 else {
                udev_monitor_unref(monitor)
                continue
            }
            monitors.append(monitor)
        }
        guard !monitors.isEmpty else { throw DiscoveryError("cannot listen to udev or kernel uevents (netlink)") }
        let (stream, continuation) = AsyncStream.makeStream(of: Change.self)
        let queue = self.queue
        let sources = monitors.map { monitor in
            let source = DispatchSource.makeReadSource(fileDescriptor: udev_monitor_get_fd(monitor), queue: queue)
            source.setEventHandler {
                while let device = udev_monitor_receive_device(monitor) {
                    defer { udev_device_unref(device) }
                    let action = udev_device_get_action(device).map(String.init(cString:)) ?? ""
                    switch action {
                    case "add", "change":
                        if let tty = Self.tty(device) { continuation.yield(.added(tty)) }
                    case "remove":
                        if let sysPath = udev_device_get_syspath(device) {
                            continuation.yield(.removed(sysPath: String(cString: sysPath)))
                        }
                    default:
                        break
                    }
                }
            }
            source.resume()
            return source
        }
        let retained = MonitorSet(udev: self, monitors: monitors, sources: sources)
        continuation.onTermination = { _ in queue.async { retained.close() } }
        return stream
    }
}

extension Udev {
    /// The same changes as `changes()`, found by comparing enumerations every `interval`: for
    /// where netlink cannot be listened to (a sandbox, a seccomp profile). Slower, never blind.
    func scannedChanges(every interval: Duration) -> AsyncStream<Change> {
        AsyncStream { continuation in
            let task = Task {
                var known: [String: TTYDevice] = [:]
                while !Task.isCancelled {
                    let now = Dictionary(ttys().map { ($0.sysPath, $0) }, uniquingKeysWith: { first, _ in first })
                    for (sysPath, device) in now where known[sysPath] != device { continuation.yield(.added(device)) }
                    for sysPath in known.keys where now[sysPath] == nil {
                        continuation.yield(.removed(sysPath: sysPath))
                    }
                    known = now
                    try? await Task.sleep(for: interval)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// Keeps the monitors and their dispatch sources alive until the stream ends.
private final class MonitorSet: @unchecked Sendable {
    let udev: Udev
    let monitors: [OpaquePointer]
    let sources: [any DispatchSourceRead]

    init(udev: Udev, monitors: [OpaquePointer], sources: [any DispatchSourceRead]) {
        self.udev = udev
        self.monitors = monitors
        self.sources = sources
    }

    func close() {
        for source in sources { source.cancel() }
        for monitor in monitors { udev_monitor_unref(monitor) }
    }
}

/// Why udev is out of reach: no udev context (`udev_new`), or no uevent monitor on netlink.
public struct DiscoveryError: Error, CustomStringConvertible {
    /// What failed, as logged and as `wiregate devices` shows it.
    public var description: String
    init(_ description: String) { self.description = description }
}
