/// Cuts a serial byte stream into text lines.
///
/// Accepts LF and CRLF endings. A line longer than `maxLineLength` is cut off: the
/// rest up to the next newline is discarded and the line is reported as over-long.
/// A line holding NUL, another control character (tab excepted) or invalid UTF-8
/// is reported as rejected, never handed on, so binary noise (a bootloader, a
/// baud-rate mismatch) can never reach a decoder or a topic name.
///
/// The framer is a value with no I/O: feed it whatever `read` returned, in any
/// split, and it gives the same lines.
public struct LineFramer: Sendable {
    /// What one complete line turned out to be.
    public enum Output: Sendable, Equatable {
        /// A clean line, without its line ending.
        case line(String)
        /// A line discarded, with the reason.
        case rejected(Rejection)
    }

    /// Why a line was discarded; the raw value is the reason as logged.
    public enum Rejection: String, Sendable, Equatable, CaseIterable {
        /// Longer than the limit; everything up to the next newline was discarded.
        case overlong = "over-long line"
        /// Held a NUL byte.
        case nul = "NUL byte"
        /// Held a control character other than tab (binary noise).
        case control = "control character"
        /// Not valid UTF-8.
        case invalidUTF8 = "invalid UTF-8"
        /// The partial line read right after opening the port (see `resynchronise()`).
        case partial = "partial first line"
    }

    /// The longest line accepted, in bytes, without its ending (1024 by default).
    public let maxLineLength: Int
    private var buffer: [UInt8] = []
    private var overflowed = false
    private var discardingUntilNewline = false

    /// - Parameter maxLineLength: the longest line accepted, in bytes, without its ending.
    public init(maxLineLength: Int = 1024) {
        precondition(maxLineLength > 0, "maxLineLength must be positive")
        self.maxLineLength = maxLineLength
        buffer.reserveCapacity(min(maxLineLength, 4096))
    }

    /// Forgets any buffered bytes and drops everything up to the next newline.
    ///
    /// Called after a port is opened: the first bytes are the tail of a line the
    /// board started before we listened, or its bootloader's noise.
    public mutating func resynchronise() {
        buffer.removeAll(keepingCapacity: true)
        overflowed = false
        discardingUntilNewline = true
    }

    /// Feeds bytes read from the port.
    /// - Parameters:
    ///   - bytes: any number of bytes, cut anywhere.
    ///   - emit: called once for each line completed by these bytes, in order.
    public mutating func feed<Bytes: Sequence<UInt8>>(_ bytes: Bytes, _ emit: (Output) -> Void) {
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                finishLine(emit)
            } else if discardingUntilNewline {
                continue
            } else if buffer.count < maxLineLength + 1 {
                // One byte of slack so that a CR right before LF still fits a full-length line.
                buffer.append(byte)
            } else {
                overflowed = true
            }
        }
    }

    private mutating func finishLine(_ emit: (Output) -> Void) {
        defer {
            buffer.removeAll(keepingCapacity: true)
            overflowed = false
        }
        if discardingUntilNewline {
            discardingUntilNewline = false
            emit(.rejected(.partial))
            return
        }
        if buffer.last == UInt8(ascii: "\r") { buffer.removeLast() }
        if overflowed || buffer.count > maxLineLength {
            emit(.rejected(.overlong))
            return
        }
        for byte in buffer {
            if byte == 0 { emit(.rejected(.nul)); return }
            if (byte < 0x20 && byte != UInt8(ascii: "\t")) || byte == 0x7F {
                emit(.rejected(.control)); return
            }
        }
        // Failable init: returns nil on invalid UTF-8 instead of repairing it.
        guard let text = String(validating: buffer, as: UTF8.self) else {
            emit(.rejected(.invalidUTF8)); return
        }
        emit(.line(text))
    }
}
