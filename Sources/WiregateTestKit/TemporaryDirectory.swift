import Foundation
import Synchronization

/// A new, empty directory named `wiregate-<name>-<uuid>` under this process's scratch root.
public func makeTemporaryDirectory(_ name: String) throws -> String {
    let path = ScratchRoot.path() + "/wiregate-\(name)-\(UUID())"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A path (not created) named `wiregate-<name>-<uuid><suffix>` under this process's scratch root.
public func temporaryPath(_ name: String, suffix: String = "") -> String {
    ScratchRoot.path() + "/wiregate-\(name)-\(UUID())\(suffix)"
}

/// Keeps this process's scratch files when it exits, for a post-mortem (a failing campaign).
public func keepTemporaryFiles() {
    ScratchRoot.state.withLock { $0.keep = true }
}

/// One folder per test process (`/tmp/wiregate-XXXXXX`) for every directory, file and copy the
/// tests make, removed when the process exits. Its name is short: umockdev's sockets go below it,
/// and a socket's path has at most 107 bytes. Each suite removing its own would miss the ones a
/// failing `init` or a crash leaves behind; a whole run of the test command left 1 GiB in /tmp
/// before this. `WIREGATE_KEEP_TEMP=1` keeps it, and says where.
///
/// Mode 0755 so that a gateway started as `nobody` reaches the directories made in it.
enum ScratchRoot {
    struct State: Sendable {
        var path: String?
        var keep = ProcessInfo.processInfo.environment["WIREGATE_KEEP_TEMP"] == "1"
    }

    static let state = Mutex(State())

    /// The system's temporary directory itself when the root cannot be made (then nothing is removed).
    static func path() -> String {
        state.withLock { state in
            if let path = state.path { return path }
            let system = FileManager.default.temporaryDirectory.path
            // A name of its own (mkdtemp), never an earlier process's: pids come round again, and a
            // kept folder of a failed run must not be removed by the next process with its pid.
            var template = Array("\(system)/wiregate-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { return system }
            let path = String(cString: made)
            chmod(path, 0o755)
            state.path = path
            atexit(removeScratchRoot)
            return path
        }
    }
}

/// Runs at exit (a C function pointer: no captures).
private func removeScratchRoot() {
    let (path, keep) = ScratchRoot.state.withLock { ($0.path, $0.keep) }
    guard let path else { return }
    if keep {
        FileHandle.standardError.write(Data("test files kept in \(path)\n".utf8))
    } else {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Copies the executable `binary` to `copy` (mode 0755) through a close-on-exec descriptor.
///
/// `FileManager.copyItem` opens the copy without close-on-exec: a child another test spawns at that
/// moment inherits it open for writing, and every exec of the copy fails with ETXTBSY ("Text file
/// busy") for as long as that child lives (a broker, for the rest of its test).
public func copyExecutable(_ binary: String, to copy: String) throws {
    let bytes = try Data(contentsOf: URL(fileURLWithPath: binary))
    let fd = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
    guard fd >= 0 else { throw TestKitError("open \(copy): errno \(errno)") }
    let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    let code = errno
    close(fd)
    guard written == bytes.count else { throw TestKitError("write \(copy): errno \(code)") }
    chmod(copy, 0o755)
}
