import Foundation

/// The file beside a journal that holds its reserved sequence ceiling (see `SequenceAllocator`):
/// one decimal number, replaced atomically and synced, so that it survives the journal itself.
struct SequenceFile: Sendable {
    static let name = "sequence"
    let path: String

    init(directory: String) {
        path = (directory as NSString).appendingPathComponent(Self.name)
    }

    /// The number in the file; 0 when there is none or it cannot be read (a journal of its own
    /// is then the only floor).
    func read() -> Int64 {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
        return Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Writes `value` to a temporary file, syncs it and renames it over the old one.
    /// - Throws: `SystemCallError` naming the call that failed.
    func write(_ value: Int64) throws(SystemCallError) {
        let temporary = path + ".tmp"
        let fd = try SystemCall.retrying("open", temporary) {
            open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        }
        defer { close(fd) }
        let bytes = Array("\(value)\n".utf8)
        var written = 0
        while written < bytes.count {
            let count = try SystemCall.retrying("write", temporary) {
                bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
            }
            // A regular file never takes nothing; should one, this must not spin.
            guard count > 0 else { throw SystemCallError(call: "write", path: temporary, code: EIO) }
            written += count
        }
        try SystemCall.retrying("fsync", temporary) { fsync(fd) }
        try SystemCall.retrying("rename", temporary) { rename(temporary, path) }
        // The rename itself must survive a power cut, or the old, lower ceiling could come back.
        let directory = (path as NSString).deletingLastPathComponent
        let directoryPath = directory.isEmpty ? "." : directory
        let dirfd = try SystemCall.retrying("open", directoryPath) {
            open(directoryPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        }
        defer { close(dirfd) }
        try SystemCall.retrying("fsync", directoryPath) { fsync(dirfd) }
    }
}
