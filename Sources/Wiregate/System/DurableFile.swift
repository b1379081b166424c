import Glibc

/// Replaces a small file so that a power cut leaves either the old content or the new, never a
/// torn one, and never the old one back once this has returned: a temporary file, written and
/// synced, renamed over the old one, and the directory synced (the rename is in it).
public enum DurableFile {
    /// Writes `bytes` to `path`, durably.
    /// - Parameters:
    ///   - path: the file to replace; `<path>.tmp` beside it is the temporary one.
    ///   - bytes: the whole new content.
    ///   - mode: the new file's permission bits (before the umask): every replace makes a new file.
    /// - Throws: `SystemCallError` naming the call that failed and its path.
    public static func replace(_ path: String, with bytes: [UInt8], mode: mode_t = 0o640) throws(SystemCallError) {
        let temporary = path + ".tmp"
        // One left by a writer that died (perhaps another user's: a daemon run by hand as root)
        // is replaced, never written through: a new file, made here, and no symlink followed.
        do throws(SystemCallError) {
            try SystemCall.retrying("unlink", temporary) { unlink(temporary) }
        } catch  where error.code == ENOENT {}
        let fd = try SystemCall.retrying("open", temporary) {
            open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        }
        defer { close(fd) }
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
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let dirfd = try SystemCall.retrying("open", directory) { open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(dirfd) }
        try SystemCall.retrying("fsync", directory) { fsync(dirfd) }
    }
}
