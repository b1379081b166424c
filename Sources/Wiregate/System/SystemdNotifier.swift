import Foundation
import Glibc
import Logging
import ServiceLifecycle

/// systemd's notify protocol (`Type=notify`, sd_notify(3)): datagrams to `$NOTIFY_SOCKET`.
///
/// READY=1 once the journal is open and the boards are being watched (this service starts
/// after them), STATUS= with a one-line summary, WATCHDOG=1 every half `$WATCHDOG_USEC` as
/// long as the journal answers (a daemon whose journal actor hangs stops pinging, and systemd
/// restarts it), STOPPING=1 on shutdown. Without `$NOTIFY_SOCKET` it does nothing.
public final class SystemdNotifier: Service, Sendable {
    private let socketPath: String?
    private let watchdogInterval: Duration?
    private let summary: @Sendable () async -> String
    private let logger: Logger

    /// - Parameter summary: the STATUS= line; awaiting it is the liveness check behind each WATCHDOG=1.
    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger,
        summary: @escaping @Sendable () async -> String
    ) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        // WATCHDOG_PID, when set, must be ours: systemd sets it for the main process only.
        let forUs = environment["WATCHDOG_PID"].map { Int32($0) == getpid() } ?? true
        watchdogInterval = forUs ? environment["WATCHDOG_USEC"].flatMap(Int64.init).map { .microseconds($0 / 2) } : nil
        self.summary = summary
        self.logger = logger
    }

    /// Sends READY=1, then WATCHDOG=1 pings until graceful shutdown, then STOPPING=1; without systemd it only waits.
    public func run() async {
        // A service that returns ends the whole group: without systemd, just wait for the shutdown.
        guard socketPath != nil else {
            try? await gracefulShutdown()
            return
        }
        send("READY=1\nSTATUS=\(await summary())")
        // Until SIGTERM: the pings stop with the shutdown (systemd allows TimeoutStopSec for it).
        await cancelWhenGracefulShutdown {
            guard let interval = self.watchdogInterval else {
                try? await gracefulShutdown()
                return
            }
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { return }
                self.send("WATCHDOG=1\nSTATUS=\(await self.summary())")
            }
        }
        send("STOPPING=1")
    }

    /// One datagram; `@name` is an abstract socket. A failure is logged at debug level: systemd
    /// missing a STATUS= is no reason to stop, and a missed WATCHDOG=1 is what it watches for.
    func send(_ message: String) {
        guard let socketPath else { return }
        guard let address = UnixSocketAddress(socketPath) else {
            logger.debug(
                "sd_notify: NOTIFY_SOCKET is too long for a socket address", metadata: ["path": "\(socketPath)"])
            return
        }
        do throws(SystemCallError) {
            let fd = try SystemCall.retrying("socket", socketPath) {
                socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            }
            defer { close(fd) }
            try SystemCall.retrying("sendto", socketPath) {
                message.withCString { text in
                    address.withSockaddr { sendto(fd, text, strlen(text), 0, $0, $1) }
                }
            }
        } catch {
            logger.debug("sd_notify failed", metadata: ["error": "\(error)"])
        }
    }
}
