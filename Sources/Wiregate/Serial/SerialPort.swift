import Glibc
import WiregateCore

/// An open serial port, set up with termios, and the one owner of its descriptor: closed when
/// the port goes away (`deinit`), unless handed to NIO (`channel(group:)`), which then owns it.
/// Noncopyable, so that no second copy can close it again. The reading itself is NIO's (see
/// `BoardReader`).
struct SerialPort: ~Copyable {
    let descriptor: CInt

    /// Takes `descriptor` over: it is closed with the port.
    init(takingOwnershipOf descriptor: CInt) {
        self.descriptor = descriptor
    }

    deinit {
        Glibc.close(descriptor)
    }

    /// Opens `path` for reading and writing as a raw 8N1 port at `baud`.
    ///
    /// `O_NOCTTY` so a board never becomes our controlling terminal; `O_NONBLOCK`
    /// so open does not wait for carrier and reads are driven by the event loop.
    /// - Parameter hupcl: whether closing the port drops DTR (which resets most Arduinos).
    /// - Throws: `SystemCallError` naming the call that failed and the path.
    static func open(path: String, baud: Int, hupcl: Bool) throws(SystemCallError) -> SerialPort {
        let port = SerialPort(
            takingOwnershipOf: try SystemCall.retrying("open", path) {
                Glibc.open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
            })
        // A failure below closes the port with it.
        let fd = port.descriptor
        var options = termios()
        _ = try SystemCall.retrying("tcgetattr", path) { tcgetattr(fd, &options) }
        cfmakeraw(&options)
        options.c_cflag &= ~(tcflag_t(CSIZE) | tcflag_t(PARENB) | tcflag_t(CSTOPB) | tcflag_t(CRTSCTS))
        options.c_cflag |= tcflag_t(CS8) | tcflag_t(CLOCAL) | tcflag_t(CREAD)
        if hupcl { options.c_cflag |= tcflag_t(HUPCL) } else { options.c_cflag &= ~tcflag_t(HUPCL) }
        options.c_iflag &= ~(tcflag_t(IXON) | tcflag_t(IXOFF) | tcflag_t(IXANY))
        withUnsafeMutableBytes(of: &options.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        let speed = speedConstant(baud)
        _ = try SystemCall.retrying("cfsetispeed", path) { cfsetispeed(&options, speed) }
        _ = try SystemCall.retrying("cfsetospeed", path) { cfsetospeed(&options, speed) }
        _ = try SystemCall.retrying("tcsetattr", path) { tcsetattr(fd, TCSANOW, &options) }
        return port
    }

    /// Discards what the board sent before we listened (its bootloader's noise, lines of a
    /// session nobody read), by reading it rather than with `tcflush`, so as to know where it
    /// ended: a flush cannot say whether the board was mid-line, and the framer then had to drop
    /// the first line after every open, an intrusion among them when a door opened just as the
    /// gateway restarted (found by the fault campaign).
    /// - Returns: whether what was queued ended at a line's end (or nothing was queued): the next
    ///   byte starts a line, and nothing needs to be resynchronised.
    func discardInput() -> Bool {
        let fd = descriptor
        var buffer = [UInt8](repeating: 0, count: 4096)
        var last: UInt8?
        // Bounded: a board that never stops talking must not keep the port from opening.
        for _ in 0..<256 {
            let outcome = try? SystemCall.retryingUnlessWouldBlock("read", "") {
                buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            }
            // Would block: nothing more queued (the port is non-blocking). End of file or an
            // error: the read loop will meet it too.
            guard case .done(let count)? = outcome, count > 0 else { break }
            last = buffer[count - 1]
        }
        return last == nil || last == UInt8(ascii: "\n")
    }

    /// The termios constant of `baud`; the config lets through only rates that have one.
    static func speedConstant(_ baud: Int) -> speed_t {
        GatewayConfig.termiosSpeeds[baud] ?? speed_t(B115200)
    }
}
