import Logging
import ServiceLifecycle
import Synchronization
import WiregateCore

/// Finds boards through udev: every tty at start-up, then each one plugged in or out.
///
/// A tty that the matcher gives to a board entry is attached to that board's reader (opened
/// at once, closed at once on unplug); one without a serial number that an entry (or
/// adoption) names by its hello line is opened first and listened to for that line. Adopted
/// boards get a reader of their own, run here.
public final class DeviceWatcher: Service, Sendable {
    private let config: GatewayConfig
    private let matcher: DeviceMatcher
    private let directory: BoardDirectory
    private let makeReader: @Sendable (GatewayConfig.Board) -> BoardReader
    private let logger: Logger
    /// sysfs path → the board it is, for the devices seen plugged in.
    private let attached = Mutex<[String: String]>([:])
    /// sysfs paths whose hello line is being listened for: one listener per device (the same
    /// `add` comes from both netlink sources, and two readers of one port would share its lines).
    private let listening = Mutex<Set<String>>([])

    init(
        config: GatewayConfig, directory: BoardDirectory, logger: Logger,
        makeReader: @escaping @Sendable (GatewayConfig.Board) -> BoardReader
    ) {
        self.config = config
        self.matcher = DeviceMatcher(config: config)
        self.directory = directory
        self.makeReader = makeReader
        self.logger = logger
    }

    /// Work for the one loop that changes state: udev's reports and the outcome of hello reads.
    private enum Work: Sendable {
        case udev(Udev.Change)
        case heard(TTYDevice, hello: String?)
    }

    /// How often the ttys are scanned when no uevent can be heard.
    static let scanInterval = Duration.seconds(1)

    /// The ttys there are now, with what sysfs says of them (for `wiregate devices`).
    public static func presentTTYs() throws -> [TTYDevice] {
        try Udev().ttys()
    }

    /// Runs until graceful shutdown. Never throws: without udev the fixed-path boards still run,
    /// and without uevents the ttys are scanned every `scanInterval` instead.
    public func run() async {
        let udev: Udev
        do {
            udev = try Udev()
        } catch {
            logger.error(
                "udev unavailable: boards are not discovered, only fixed paths are opened",
                metadata: ["error": "\(error)"])
            try? await gracefulShutdown()
            return
        }
        // Listen before enumerating, so that nothing plugged in between is missed (a device
        // seen twice is a no-op).
        let changes: AsyncStream<Udev.Change>
        do {
            changes = try udev.changes()
        } catch {
            logger.error(
                "cannot listen to uevents: scanning the ttys periodically instead",
                metadata: [
                    "error": "\(error)", "interval": "\(Self.scanInterval)"
                ])
            changes = udev.scannedChanges(every: Self.scanInterval)
        }
        let (work, inbox) = AsyncStream.makeStream(of: Work.self)
        for device in udev.ttys() { inbox.yield(.udev(.added(device))) }
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await change in changes { inbox.yield(.udev(change)) }
            }
            group.addTask {
                try? await gracefulShutdown()
                inbox.finish()
            }
            for await item in work.cancelOnGracefulShutdown() {
                switch item {
                case .udev(.added(let device)):
                    guard attached.withLock({ $0[device.sysPath] }) == nil,
                        !listening.withLock({ $0.contains(device.sysPath) })
                    else { continue }
                    decide(device, hello: nil, helloRead: false, group: &group, inbox: inbox)
                case .heard(let device, let hello):
                    // Unplugged while we listened: nothing to attach.
                    guard listening.withLock({ $0.remove(device.sysPath) }) != nil else { continue }
                    decide(device, hello: hello, helloRead: true, group: &group, inbox: inbox)
                case .udev(.removed(let sysPath)):
                    listening.withLock { _ = $0.remove(sysPath) }
                    guard let name = attached.withLock({ $0.removeValue(forKey: sysPath) }) else { continue }
                    logger.info("board unplugged", metadata: ["board": "\(name)", "sys_path": "\(sysPath)"])
                    directory[name]?.detach()
                }
            }
            group.cancelAll()
        }
    }

    private func decide(
        _ device: TTYDevice, hello: String?, helloRead: Bool, group: inout DiscardingTaskGroup,
        inbox: AsyncStream<Work>.Continuation
    ) {
        switch matcher.decide(device, hello: hello, helloRead: helloRead) {
        case .board(let index):
            attach(device, to: config.boards[index].name)
        case .adopt(let name, let identity):
            if directory[name] == nil, let board = config.adoptedBoard(named: name, identity: identity) {
                let reader = makeReader(board)
                if directory.add(reader) {
                    logger.notice("unknown board adopted", metadata: ["board": "\(name)", "node": "\(device.node)"])
                    group.addTask { await reader.run() }
                }
            }
            attach(device, to: name)
        case .awaitHello:
            listening.withLock { _ = $0.insert(device.sysPath) }
            let settings = config.helloListening
            let pattern = config.discovery.hello
            let timeout = config.discovery.helloTimeout
            group.addTask {
                let name = await HelloListener.listen(
                    path: device.node, baud: settings.baud, hupcl: settings.hupcl,
                    settle: settings.settle, timeout: timeout, pattern: pattern)
                inbox.yield(.heard(device, hello: name))
            }
        case .ignore(let reason):
            logger.debug("tty is not a board", metadata: ["node": "\(device.node)", "reason": "\(reason)"])
        case .refuse(let reason):
            logger.warning("device refused", metadata: ["node": "\(device.node)", "reason": "\(reason)"])
        }
    }

    private func attach(_ device: TTYDevice, to name: String) {
        guard let reader = directory[name] else { return }
        // One device per board: a second one matching the same entry is refused, not merged.
        let taken = attached.withLock { attached -> String? in
            if let other = attached.first(where: { $0.value == name })?.key, other != device.sysPath { return other }
            attached[device.sysPath] = name
            return nil
        }
        if let taken {
            logger.warning(
                "a second device matches the same board entry; ignored",
                metadata: [
                    "board": "\(name)", "node": "\(device.node)", "already": "\(taken)"
                ])
            return
        }
        logger.info(
            "board plugged in",
            metadata: [
                "board": "\(name)", "node": "\(device.node)",
                "identity": "\(BoardIdentity(device: device).map(String.init(describing:)) ?? "-")"
            ])
        reader.attach(node: device.node)
    }
}

extension DeviceMatcher {
    /// The matcher for a config: its boards' `match:` entries in order, the USB allow-list and the
    /// `unknown_boards` policy; an adopted board may never take a configured board's name, nor
    /// `alarm` (`<base>/<gateway>/alarm/...` are the alarm panel's topics), nor `state` (the
    /// entities' states for Home Assistant, whether or not it is configured now), nor `time` (the
    /// gateway's time corrections).
    /// - Parameter config: a validated config.
    public init(config: GatewayConfig) {
        self.init(
            matches: config.boards.map(\.match), allowList: config.discovery.usbIDs,
            adoptUnknown: config.discovery.adoptUnknown,
            reservedNames: Set(
                config.boards.map(\.name) + [GatewayConfig.alarmTopicLevel, GatewayConfig.timeTopicLevel]
                    + GatewayConfig.homeAssistantReservedBoardNames))
    }
}

extension GatewayConfig {
    /// How to open a port to listen for its hello line: the settings of the first entry that
    /// names boards by hello, else the adoption defaults, else 115200 baud.
    var helloListening: (baud: Int, hupcl: Bool, settle: Duration) {
        let board = boards.first { $0.match.needsHello } ?? adoptTemplate
        return (board?.baud ?? 115_200, board?.hupcl ?? true, board?.settle ?? .seconds(2))
    }
}
