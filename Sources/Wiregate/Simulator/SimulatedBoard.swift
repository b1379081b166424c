import Foundation
import Glibc
import Synchronization

/// A virtual board on a pseudo-terminal: the gateway opens `path` as it would a
/// `/dev/ttyACM*`, and this side writes the board's lines and reads its commands.
///
/// The simulator keeps the pty's board end open itself, so the gateway can close
/// and reopen the port like a real one; `hangUp()` closes both ends, which the
/// gateway sees as an unplugged board (EIO / POLLHUP).
public final class SimulatedBoard: Sendable {
    /// The device path to give the gateway (`/dev/pts/N`, or the link if one was asked for).
    public let path: String
    /// The pts device itself.
    public let devicePath: String
    private let link: String?
    /// `<link>.lock`, held (flock) for the simulator's life: the proof that a link is alive, which
    /// its target cannot give (a killed simulator's pty number is soon another pty's).
    private let linkLock: CInt
    private let fds = Mutex<(controller: CInt, device: CInt)?>(nil)
    private let pending = Mutex<[UInt8]>([])
    /// Lines that could not be written because nobody drained the port (a real board's USB buffer overflows the same way).
    public var droppedLines: Int { dropped.load(ordering: .relaxed) }
    private let dropped = Atomic<Int>(0)

    /// Who may open the board's device besides root, and how: a pty belongs to whoever made it,
    /// mode 0620, so a daemon running as another user (the service's `wiregate`) could not open it.
    public struct Access: Sendable {
        /// The device's owner (`fchown`); changing it to another user needs root.
        public var uid: uid_t
        /// The device's group, such as `dialout`, which the service's user is in.
        public var gid: gid_t
        /// The device's permission bits (`fchmod`), such as 0660 for owner and group.
        public var mode: mode_t

        /// The ownership given to the device when the simulator opens it.
        /// - Parameters:
        ///   - uid: the owner to give the device.
        ///   - gid: the group to give it.
        ///   - mode: its permission bits.
        public init(uid: uid_t, gid: gid_t, mode: mode_t) {
            self.uid = uid
            self.gid = gid
            self.mode = mode
        }
    }

    /// Opens a new pseudo-terminal in raw mode.
    /// - Parameters:
    ///   - link: a symlink to create to the device, for a stable path in a config. A symlink left
    ///     there by a simulator that was killed is replaced; anything else there is an error.
    ///   - access: the device's owner, group and mode; the creator's, 0620, when nil.
    /// - Throws: `SystemCallError` naming the call and the path.
    public init(link: String? = nil, access: Access? = nil) throws(SystemCallError) {
        var linkLock: CInt = -1
        if let link {
            linkLock = try Self.lockLink(link)
        }
        var controller: CInt = -1, device: CInt = -1
        var raw = termios()
        cfmakeraw(&raw)
        guard openpty(&controller, &device, nil, &raw, nil) == 0 else {
            let code = errno
            if linkLock >= 0 { close(linkLock) }
            throw SystemCallError(call: "openpty", path: "", code: code)
        }
        func fail(_ call: String, _ path: String, _ code: CInt) -> SystemCallError {
            close(controller); close(device)
            if linkLock >= 0 { close(linkLock) }
            return SystemCallError(call: call, path: path, code: code)
        }
        do throws(SystemCallError) {
            let flags = try SystemCall.retrying("fcntl", "the pty controller") { fcntl(controller, F_GETFL) }
            try SystemCall.retrying("fcntl", "the pty controller") { fcntl(controller, F_SETFL, flags | O_NONBLOCK) }
            try SystemCall.retrying("fcntl", "the pty controller") { fcntl(controller, F_SETFD, FD_CLOEXEC) }
            try SystemCall.retrying("fcntl", "the pty device") { fcntl(device, F_SETFD, FD_CLOEXEC) }
        } catch {
            throw fail(error.call, error.path, error.code)
        }
        // ttyname_r, not ttyname: ttyname's static buffer, shared by boards made at once on other
        // threads (the tests run in parallel), once gave a path with another's bytes in it.
        var name = [CChar](repeating: 0, count: Int(PATH_MAX))
        let named = ttyname_r(device, &name, name.count)
        guard named == 0 else { throw fail("ttyname_r", "", named) }
        let devicePath = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.devicePath = devicePath
        do throws(SystemCallError) {
            if let access {
                try SystemCall.retrying("fchown", devicePath) { fchown(device, access.uid, access.gid) }
                try SystemCall.retrying("fchmod", devicePath) { fchmod(device, access.mode) }
            }
            if let link {
                try SystemCall.retrying("symlink", link) { symlink(devicePath, link) }
            }
        } catch {
            throw fail(error.call, error.path, error.code)
        }
        self.link = link
        self.linkLock = linkLock
        path = link ?? devicePath
        fds.withLock { $0 = (controller, device) }
    }

    deinit { hangUp() }

    /// Takes `<link>.lock`, then removes a pty link left at `link` by a simulator that was killed
    /// (whoever made it no longer holds the lock). Anything else at `link` is left alone, and
    /// `symlink` refuses it (EEXIST): this never deletes a file it did not make.
    /// - Returns: the lock's descriptor, held until `hangUp`.
    /// - Throws: EEXIST as a `symlink` error when a running simulator holds the link.
    private static func lockLink(_ link: String) throws(SystemCallError) -> CInt {
        let lockPath = link + ".lock"
        let lock = try SystemCall.retrying("open", lockPath) {
            open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        }
        do throws(SystemCallError) {
            guard
                case .done = try SystemCall.retryingUnlessWouldBlock(
                    "flock", lockPath, { flock(lock, LOCK_EX | LOCK_NB) })
            else {
                throw SystemCallError(call: "symlink", path: link, code: EEXIST)
            }
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: link))?.hasPrefix("/dev/pts/") == true {
                do throws(SystemCallError) {
                    try SystemCall.retrying("unlink", link) { unlink(link) }
                } catch  where error.code == ENOENT {
                    // Gone meanwhile: what was wanted.
                }
            }
        } catch {
            close(lock)
            throw error
        }
        return lock
    }

    /// Writes one line (a newline is added).
    /// - Returns: false when the line was dropped because the port's buffer is full or the board hung up.
    @discardableResult
    public func send(_ line: String) -> Bool {
        writeBytes(Array(line.utf8) + [UInt8(ascii: "\n")])
    }

    /// Writes raw bytes, for noise and torn lines.
    @discardableResult
    public func writeBytes(_ bytes: [UInt8]) -> Bool {
        guard let controller = fds.withLock({ $0?.controller }) else { return false }
        // A hung-up or full port (EIO, EAGAIN) drops the line: counted, not thrown (a board's wire
        // has no error to report either).
        let first = try? SystemCall.retryingUnlessWouldBlock("write", path) {
            bytes.withUnsafeBytes { Glibc.write(controller, $0.baseAddress, $0.count) }
        }
        guard case .done(let written) = first else {
            dropped.add(1, ordering: .relaxed)
            return false
        }
        if written == bytes.count { return true }
        if written > 0 {
            // A partial write: finish it, or the next line would be glued to half of this one.
            // Bounded: a caller on a thread of Swift's shared pool must never wait forever for a
            // reader that needs that thread (a test run hung so); past 5 s the line is torn, counted.
            var rest = Array(bytes[written...])
            let deadline = ContinuousClock.now + .seconds(5)
            while !rest.isEmpty {
                switch try? SystemCall.retryingUnlessWouldBlock(
                    "write", path, { rest.withUnsafeBytes { Glibc.write(controller, $0.baseAddress, $0.count) } })
                {
                case .done(let more) where more > 0:
                    rest.removeFirst(more)
                case .done where ContinuousClock.now < deadline:
                    // Took nothing: as would-block, never a spin past the bound.
                    usleep(200)
                case .wouldBlock where ContinuousClock.now < deadline:
                    usleep(200)
                default:
                    dropped.add(1, ordering: .relaxed)
                    return false
                }
            }
            return true
        }
        dropped.add(1, ordering: .relaxed)
        return false
    }

    /// Reads the complete lines the gateway wrote since the last call, waiting up to `timeout` for the first.
    /// The lines the gateway wrote, gathered until `done` says enough or `timeout` passes, polling
    /// without holding a thread of the shared pool (in-process gateways need it to write them).
    public func receivedLines(within timeout: Duration, until done: ([String]) -> Bool) async -> [String] {
        let deadline = ContinuousClock.now + timeout
        var lines: [String] = []
        repeat {
            lines += receivedLines()
            if done(lines) { break }
            try? await Task.sleep(for: .milliseconds(20))
        } while ContinuousClock.now < deadline
        return lines
    }

    /// The complete lines the gateway wrote since the last call, without their line endings. Blocks the
    /// calling thread up to `timeout` for the first: from async code, use `receivedLines(within:until:)`.
    /// - Parameter timeout: how long to wait when none is there yet; zero: only what is there now.
    /// - Returns: the lines, oldest first; empty when none came in time or the board was hung up.
    public func receivedLines(timeout: Duration = .zero) -> [String] {
        guard let controller = fds.withLock({ $0?.controller }) else { return [] }
        let deadline = ContinuousClock.now + timeout
        var lines: [String] = []
        repeat {
            var poller = pollfd(fd: controller, events: Int16(POLLIN), revents: 0)
            let remaining = max(.zero, deadline - ContinuousClock.now)
            let millis = Int32(
                min(
                    remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000, 1000
                ))
            // A failed wait is nothing ready; the deadline still ends the loop.
            let ready = (try? SystemCall.retrying("poll", path) { poll(&poller, 1, millis) }) ?? 0
            if ready > 0 && poller.revents & Int16(POLLIN) == 0 {
                // POLLHUP / POLLERR without data: nothing to read until the gateway reopens; do not spin.
                usleep(UInt32(max(1, min(millis, 50))) * 1000)
                continue
            }
            if ready > 0 {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let outcome = try? SystemCall.retryingUnlessWouldBlock("read", path) {
                    buffer.withUnsafeMutableBytes { read(controller, $0.baseAddress, $0.count) }
                }
                if case .done(let count) = outcome, count > 0 {
                    lines += pending.withLock { pending in
                        pending += buffer[..<count]
                        var complete: [String] = []
                        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                            var line = Array(pending[..<newline])
                            if line.last == UInt8(ascii: "\r") { line.removeLast() }
                            complete.append(String(decoding: line, as: UTF8.self))
                            pending.removeFirst(newline + 1)
                        }
                        return complete
                    }
                }
            }
        } while lines.isEmpty && ContinuousClock.now < deadline
        return lines
    }

    /// Closes both ends: the gateway sees the board unplugged. The link, if any, is removed while
    /// it still points at this pty (another simulator may have taken the path since).
    public func hangUp() {
        guard
            let (controller, device) = fds.withLock({ fds in
                defer { fds = nil }; return fds
            })
        else { return }
        if let link {
            // Only while it is still this pty's; the lock file goes with it, unlinked before the
            // lock is let go so that no one else's lock is removed.
            if (try? FileManager.default.destinationOfSymbolicLink(atPath: link)) == devicePath { unlink(link) }
            unlink(link + ".lock")
            close(linkLock)
        }
        close(device)
        close(controller)
    }
}
