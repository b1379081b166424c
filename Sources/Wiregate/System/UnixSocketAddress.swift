import Glibc

/// A `sockaddr_un` for a path, or for an abstract name (`@name`, as `$NOTIFY_SOCKET` may give):
/// the bytes in `sun_path` and the length the kernel is to read. systemd's notifier and the
/// alarm CLI build theirs here.
public struct UnixSocketAddress {
    private var address = sockaddr_un()
    private let length: socklen_t

    /// - Parameter path: a socket path, or `@` and an abstract name.
    /// - Returns: nil when it does not fit in `sun_path` (108 bytes with the NUL).
    public init?(_ path: String) {
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        // An abstract name is exactly its bytes; a path ends at its NUL.
        length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
    }

    /// Calls `body` with the address as the socket calls take it.
    public func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        withUnsafePointer(to: address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }
}
