import Glibc
import WiregateCore

/// A failed system call, with its name, the path and errno.
public struct SystemCallError: Error, Sendable, CustomStringConvertible {
    public var call: String
    public var path: String
    public var code: Int32

    public var description: String { "\(call)(\(path)): \(String(cString: strerror(code))) (errno \(code))" }
}

/// termios set-up of a serial port. The reading itself is NIO's (see `BoardReader`).
enum SerialPort {
    /// Opens `path` for reading and writing as a raw 8N1 port at `baud`.
    ///
    /// `O_NOCTTY` so a board never becomes our controlling terminal; `O_NONBLOCK`
    /// so open does not wait for carrier and reads are driven by the event loop.
    /// - Parameter hupcl: whether closing the port drops DTR (which resets most Arduinos).
    /// - Returns: the descriptor, owned by the caller.
    static func open(path: String, baud: Int, hupcl: Bool) throws(SystemCallError) -> CInt {
        let fd = try retryingOnEINTR("open", path) { Glibc.open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC) }
        do {
            var options = termios()
            _ = try retryingOnEINTR("tcgetattr", path) { tcgetattr(fd, &options) }
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
            _ = try retryingOnEINTR("cfsetispeed", path) { cfsetispeed(&options, speed) }
            _ = try retryingOnEINTR("cfsetospeed", path) { cfsetospeed(&options, speed) }
            _ = try retryingOnEINTR("tcsetattr", path) { tcsetattr(fd, TCSANOW, &options) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Discards what the board sent before we listened (its bootloader's noise, lines of a
    /// session nobody read), by reading it rather than with `tcflush`, so as to know where it
    /// ended: a flush cannot say whether the board was mid-line, and the framer then had to drop
    /// the first line after every open, an intrusion among them when a door opened just as the
    /// gateway restarted (found by the fault campaign).
    /// - Returns: whether what was queued ended at a line's end (or nothing was queued): the next
    ///   byte starts a line, and nothing needs to be resynchronised.
    static func discardInput(_ fd: CInt) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var last: UInt8?
        // Bounded: a board that never stops talking must not keep the port from opening.
        for _ in 0..<256 {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                last = buffer[count - 1]
                continue
            }
            if count < 0 && errno == EINTR { continue }
            // EAGAIN: nothing more queued (the port is non-blocking). Anything else: the read
            // loop will meet it too.
            break
        }
        return last == nil || last == UInt8(ascii: "\n")
    }

    static func speedConstant(_ baud: Int) -> speed_t {
        switch baud {
        case 1200: return speed_t(B1200)
        case 2400: return speed_t(B2400)
        case 4800: return speed_t(B4800)
        case 9600: return speed_t(B9600)
        case 19200: return speed_t(B19200)
        case 38400: return speed_t(B38400)
        case 57600: return speed_t(B57600)
        case 230400: return speed_t(B230400)
        case 460800: return speed_t(B460800)
        case 500000: return speed_t(B500000)
        case 921600: return speed_t(B921600)
        case 1000000: return speed_t(B1000000)
        case 2000000: return speed_t(B2000000)
        default: return speed_t(B115200) // config validation allows only the rates above and 115200
        }
    }

    /// Runs a system call, retrying on EINTR and throwing with errno on failure.
    static func retryingOnEINTR(_ call: String, _ path: String, _ body: () -> CInt) throws(SystemCallError) -> CInt {
        while true {
            let result = body()
            if result >= 0 { return result }
            if errno == EINTR { continue }
            throw SystemCallError(call: call, path: path, code: errno)
        }
    }
}
