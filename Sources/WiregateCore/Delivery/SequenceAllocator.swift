/// Hands out per-gateway sequence numbers that never repeat: not after a crash, not after the
/// journal file was moved aside or lost, not across the memory fallback.
///
/// The next block is asked for when half of the current one is used, so its write (off the hot
/// path: a slow card must not hold up a port) is on the card long before a number of it is used.
///
/// The journal's own counter cannot promise that alone: it is lost with the file, and numbers of
/// telemetry published live but never committed are gone from it after a crash (a consumer has
/// seen them). So numbers are reserved in blocks in a small file beside the journal, written
/// before any number of a new block is handed out: a crash or a lost journal costs a gap, never
/// a repeat, and the file is written once per `block` events, not once per commit (the SD card).
/// A clean stop records the exact last number, so an ordinary restart leaves no gap.
///
/// Pure: the journal writes the reservations it asks for.
public struct SequenceAllocator: Sendable, Equatable {
    /// Numbers reserved at once: at 10 events/s one write every 17 minutes.
    public static let defaultBlock: Int64 = 10_000

    /// The next number to hand out.
    public private(set) var next: Int64
    /// The highest reservation asked for: numbers up to the one before it are durably reserved
    /// by the time they are used (or the write failed, which the journal reports).
    public private(set) var reserved: Int64
    /// Numbers reserved per write of the reservation file; `defaultBlock` unless given, above zero.
    public let block: Int64

    /// - Parameters:
    ///   - floor: the highest number anything says was handed out (the journal's counter, the
    ///     reservation files, a damaged journal's last row).
    public init(after floor: Int64, block: Int64 = defaultBlock) {
        precondition(block > 0)
        next = floor + 1
        reserved = floor
        self.block = block
    }

    /// The last number handed out.
    public var last: Int64 { next - 1 }

    /// Reserves the next block now (the journal does at open, which also proves that its
    /// directory can be written). - Returns: the ceiling to write.
    public mutating func reserveAhead() -> Int64 {
        reserved = last + block
        return reserved
    }

    /// Takes `count` consecutive numbers.
    /// - Returns: the first of them, and a new ceiling to reserve (write durably) when the current
    ///   reservation is half used.
    public mutating func take(_ count: Int) -> (first: Int64, reserve: Int64?) {
        precondition(count > 0)
        let first = next
        next += Int64(count)
        guard last + block / 2 > reserved else { return (first, nil) }
        reserved = max(reserved, last) + block
        return (first, reserved)
    }
}
