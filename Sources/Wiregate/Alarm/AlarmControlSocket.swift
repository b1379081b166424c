import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import WiregateCore

/// `wiregate alarm` talks to the daemon here: a Unix socket that only the service's user and
/// group may use, for arming and disarming with no network at all.
///
/// Two locks: the socket file is 0660 in a directory of the service's (systemd's
/// `RuntimeDirectory=`, 0750), and each connection's peer credentials (`SO_PEERCRED`) must be
/// root, the service's user or its group, else it is closed unanswered and logged. One request
/// per connection, one JSON line each way:
/// `{"command": "arm", "mode": "away", "code": "..."}` → `{"ok": true, "state": "arming"}`.
public final class AlarmControlSocket: Service, Sendable {
    /// One request.
    public struct Request: Codable, Sendable {
        /// `status`, `arm` or `disarm`.
        public var command: String
        /// For `arm`: `home`, `away`, `night` or `vacation`.
        public var mode: String?
        /// The code as typed; never logged.
        public var code: String?

        /// A request as the CLI sends it.
        public init(command: String, mode: String? = nil, code: String? = nil) {
            self.command = command
            self.mode = mode
            self.code = code
        }
    }

    /// One answer.
    public struct Reply: Codable, Equatable, Sendable {
        /// Whether the command was carried out.
        public var ok: Bool
        /// The alarm's state after it.
        public var state: String?
        /// Why it was refused.
        public var error: String?
    }

    /// The CLI's side: sends `request` to the daemon's socket at `path` and waits (at most 60 s,
    /// a code check included) for the answer.
    /// - Throws: `SystemCallError` when the socket cannot be reached (EACCES: not the service's
    ///   user or group; ENOENT or ECONNREFUSED: no daemon with an alarm).
    public static func send(_ request: Request, to path: String) throws -> Reply {
        let fd = try SystemCall.retrying("socket", path) {
            socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        defer { close(fd) }
        guard let address = UnixSocketAddress(path) else {
            throw SystemCallError(call: "connect", path: path, code: ENAMETOOLONG)
        }
        try SystemCall.retrying("connect", path) { address.withSockaddr { connect(fd, $0, $1) } }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var line = Array((try? JSONEncoder().encode(request)) ?? Data())
        line.append(UInt8(ascii: "\n"))
        var written = 0
        while written < line.count {
            // MSG_NOSIGNAL: a daemon that closes on us (another user's credentials) is an error
            // here, not a SIGPIPE that kills the CLI.
            let offset = written
            let sent = Result { () throws(SystemCallError) -> Int in
                try SystemCall.retrying("send", path) {
                    line.withUnsafeBytes {
                        Glibc.send(fd, $0.baseAddress! + offset, line.count - offset, Int32(MSG_NOSIGNAL))
                    }
                }
            }
            switch sent {
            case .success(let count): written += count
            case .failure(let error) where error.code == EPIPE || error.code == ECONNRESET:
                throw SystemCallError(call: "send", path: path, code: EACCES)
            case .failure(let error): throw error
            }
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while !answer.contains(UInt8(ascii: "\n")) && answer.count < 65536 {
            let received = Result { () throws(SystemCallError) -> Int in
                try SystemCall.retrying("read", path) {
                    chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                }
            }
            let count: Int
            switch received {
            case .success(let value): count = value
            case .failure(let error) where error.code == ECONNRESET:
                // Closed unanswered, with our request unread: refused.
                throw SystemCallError(call: "read", path: path, code: EACCES)
            case .failure(let error): throw error
            }
            if count == 0 { break }
            answer += chunk[..<count]
        }
        guard let reply = try? JSONDecoder().decode(Reply.self, from: Data(answer.prefix { $0 != UInt8(ascii: "\n") }))
        else {
            // Closed unanswered: the daemon refused this user (its credentials), or stopped.
            throw SystemCallError(call: "read", path: path, code: EACCES)
        }
        return reply
    }

    private let path: String
    private let panel: AlarmPanel
    private let logger: Logger

    /// - Parameters:
    ///   - path: where the socket is made (a stale one there is replaced).
    ///   - panel: where the commands go.
    public init(path: String, panel: AlarmPanel, logger: Logger) {
        self.path = path
        self.panel = panel
        self.logger = logger
    }

    /// Where the socket is: `alarm.socket`, or beside the journal when that directory does not
    /// exist (the daemon run by hand, not by systemd, which makes `/run/wiregate`). The CLI looks
    /// in the same place.
    public static func path(for config: GatewayConfig) -> String {
        let configured = config.alarm?.socket ?? GatewayConfig.Alarm.defaultSocket
        let directory = (configured as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue {
            return configured
        }
        return (config.gateway.stateDirectory as NSString).appendingPathComponent("alarm.sock")
    }

    /// The user's name, or `uid N` when it has none.
    static func userName(_ uid: uid_t) -> String {
        accountName(uid) ?? "uid \(uid)"
    }

    /// The account's name, with the reentrant lookup (connections are served concurrently);
    /// nil for a uid no account has.
    private static func accountName(_ uid: uid_t) -> String? {
        var entry = passwd()
        var found: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 1024)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &found) == 0, found != nil, let name = entry.pw_name else {
            return nil
        }
        return String(cString: name)
    }

    /// Whether a peer with these credentials may command the alarm: root, this process's user,
    /// or a member of its group, as primary group or as one added with `usermod -aG` (SO_PEERCRED
    /// gives the primary one only: the others come from the group database).
    static func allows(uid: uid_t, gid: gid_t) -> Bool {
        if uid == 0 || uid == geteuid() || gid == getegid() { return true }
        guard let name = accountName(uid) else { return false }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(name, gid, &groups, &count) >= 0 else { return false }
        }
        return groups.prefix(Int(count)).contains(getegid())
    }

    /// Serves until graceful shutdown, then removes the socket.
    public func run() async {
        // The CLI is one way in among several: a socket that cannot be made is logged, and the
        // daemon (the alarm, the boards) goes on. Thrown, it would stop every service.
        do {
            try await serve()
        } catch {
            logger.critical(
                "alarm control socket unavailable: wiregate alarm will not reach the daemon",
                metadata: ["path": "\(path)", "error": "\(error)"])
            try? await gracefulShutdown()
        }
    }

    private func serve() async throws {
        // A socket left by a daemon that was killed is replaced; anything else there is not
        // ours to delete (a mistyped `socket:` naming alarm.json, say): bind then fails, logged.
        var info = stat()
        if lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK { unlink(path) }
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 8)
            .bind(unixDomainSocketPath: path) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        // Owner and group only; the directory is the first lock, this the second.
        chmod(path, 0o660)
        logger.info("alarm control socket ready", metadata: ["path": "\(path)"])
        defer { unlink(path) }
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        let channel = connection.channel
        let credentials: PeerCredentials
        do {
            guard let provider = channel as? SocketOptionProvider else { throw ChannelError.operationUnsupported }
            credentials = try await provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED)
            ).get()
        } catch {
            logger.warning("alarm control: no peer credentials, connection closed", metadata: ["error": "\(error)"])
            try? await channel.close()
            return
        }
        guard Self.allows(uid: credentials.uid, gid: credentials.gid) else {
            logger.warning(
                "alarm control: refused a connection from another user",
                metadata: ["uid": "\(credentials.uid)", "gid": "\(credentials.gid)", "pid": "\(credentials.pid)"])
            try? await channel.close()
            return
        }
        do {
            try await connection.executeThenClose { inbound, outbound in
                // One line, at most 4 KiB; a client that says nothing is dropped after 30 s, so
                // that it cannot hold a connection forever.
                let line = try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
                    group.addTask {
                        var gathered = ByteBuffer()
                        for try await var chunk in inbound {
                            gathered.writeBuffer(&chunk)
                            if let end = gathered.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                                return gathered.getSlice(at: gathered.readerIndex, length: end - gathered.readerIndex)
                            }
                            if gathered.readableBytes > 4096 { return nil }
                        }
                        return nil
                    }
                    group.addTask {
                        try await Task.sleep(for: .seconds(30))
                        return nil
                    }
                    defer { group.cancelAll() }
                    return try await group.next() ?? nil
                }
                guard let line else { return }
                let reply = await answer(line, uid: credentials.uid)
                var data = try JSONEncoder().encode(reply)
                data.append(UInt8(ascii: "\n"))
                try await outbound.write(ByteBuffer(bytes: data))
            }
        } catch {
            logger.debug("alarm control connection ended", metadata: ["error": "\(error)"])
        }
    }

    private func answer(_ line: ByteBuffer, uid: uid_t) async -> Reply {
        guard let request = try? JSONDecoder().decode(Request.self, from: Data(line.readableBytesView)) else {
            return Reply(ok: false, error: "not a request")
        }
        // Who it was, from the kernel's credentials, not from anything the client says.
        let user = Self.userName(uid)
        let command: AlarmStateMachine.Command
        switch (request.command, request.mode.flatMap(ArmMode.init(rawValue:))) {
        case ("status", _):
            return Reply(ok: true, state: panel.status.state.rawValue)
        case ("arm", let mode?):
            command = .arm(mode)
        case ("disarm", _):
            command = .disarm
        default:
            return Reply(ok: false, error: "unknown command (status, arm home|away|night|vacation, disarm)")
        }
        switch await panel.submit(command, code: request.code, source: .cli(user: user)) {
        case .done(let state):
            // Done, but say so when it would not survive a restart.
            return Reply(ok: true, state: state.rawValue, error: panel.status.notSaved.map { "not saved: \($0)" })
        case .refused(let reason): return Reply(ok: false, state: panel.status.state.rawValue, error: reason)
        }
    }
}

/// Linux's `struct ucred` (`SO_PEERCRED`), which Swift's Glibc module leaves out (it wants
/// `_GNU_SOURCE`): the same three fields, in the same order and sizes.
struct PeerCredentials: Sendable {
    var pid: pid_t = 0
    var uid: uid_t = 0
    var gid: gid_t = 0
}
