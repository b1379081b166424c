import CSpawn
import Foundation
import Glibc
import Synchronization

/// A child process started with posix_spawn and a clean signal mask.
///
/// Foundation's `Process` on Linux spawns from a dispatch worker thread whose signals
/// are blocked, and the child inherits that mask: `terminate()` then never reaches
/// it (mosquitto and mosquitto_sub ignore SIGTERM until SIGKILL). Here the child gets
/// an empty mask and default dispositions, so SIGTERM works as in a shell.
public final class ChildProcess: Sendable {
    /// The child's process id, for signals (and only this child is ever signalled).
    public let pid: pid_t
    private let exited = Mutex<Int32?>(nil)

    /// Starts `path` with `arguments`.
    /// - Parameters:
    ///   - stdin: a descriptor for the child's standard input, or nil for /dev/null.
    ///   - stdout: a descriptor for the child's standard output, or nil for /dev/null.
    ///   - stderr: the same for standard error.
    ///   - environment: variables set (or replaced) in the child's copy of this process's environment.
    public init(
        _ path: String, _ arguments: [String], stdin: CInt? = nil, stdout: CInt? = nil, stderr: CInt? = nil,
        environment: [String: String] = [:]
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdin {
            posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        if let stdout {
            posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        if let stderr {
            posix_spawn_file_actions_adddup2(&actions, stderr, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        // Nothing else is inherited: a descriptor another thread opened without close-on-exec
        // (a binary being copied, a broker's socket) would otherwise live as long as the child,
        // and an exec of that binary would fail with ETXTBSY for as long.
        posix_spawn_file_actions_addclosefrom_np(&actions, 3)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var variables = ProcessInfo.processInfo.environment
        variables.merge(environment) { $1 }
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard code == 0 else { throw TestKitError("posix_spawn \(path): \(String(cString: strerror(code)))") }
        self.pid = pid
    }

    deinit { terminate() }

    /// Whether the child has not exited yet.
    public var isRunning: Bool {
        if exited.withLock({ $0 }) != nil { return false }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid || result < 0 {
            exited.withLock { $0 = status }
            return false
        }
        return true
    }

    /// Waits for the exit.
    /// - Returns: the exit status, or 128 + the signal that ended it.
    public func waitForExit() -> Int32 {
        while isRunning { usleep(5_000) }
        let status = exited.withLock { $0 } ?? 0
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import (they are macros).
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }

    /// Sends `signal`.
    public func send(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    /// SIGTERM, waits up to 5 s, then SIGKILL.
    public func terminate() {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        for _ in 0..<500 where isRunning { usleep(10_000) }
        if isRunning {
            kill(pid, SIGKILL)
            while isRunning { usleep(10_000) }
        }
    }

    /// Runs `path` to its end and collects what it printed.
    /// - Parameter mergingStandardError: standard error into the output too (as a user sees it), else to ours.
    /// - Returns: the exit status and the output.
    public static func run(
        _ path: String, _ arguments: [String], environment: [String: String] = [:],
        mergingStandardError: Bool = false
    ) throws -> (status: Int32, output: String) {
        var fds: [CInt] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw TestKitError("socketpair: errno \(errno)")
        }
        let child: ChildProcess
        do {
            child = try ChildProcess(
                path, arguments, stdout: fds[1], stderr: mergingStandardError ? fds[1] : 2, environment: environment)
        } catch {
            close(fds[0]); close(fds[1])
            throw error
        }
        close(fds[1])
        var output = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if count <= 0 { break }
            output += buffer[..<count]
        }
        close(fds[0])
        return (child.waitForExit(), String(decoding: output, as: UTF8.self))
    }
}
