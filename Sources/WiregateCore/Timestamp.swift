import Foundation

/// RFC 3339 timestamps in UTC with milliseconds (`2026-11-29T13:19:05.123Z`), made fast:
/// the date-and-time part is formatted once per second and reused, since a busy board
/// sends thousands of events within the same second.
public struct TimestampFormatter: Sendable {
    private var cachedSecond: Int64 = .min
    private var cachedPrefix = ""

    /// A formatter with nothing cached yet.
    public init() {}

    /// The RFC 3339 UTC form of `date`, milliseconds truncated (not rounded).
    /// - Parameter date: the time to format.
    /// - Returns: a string such as `2026-11-29T13:19:05.123Z`.
    public mutating func string(from date: Date) -> String {
        let interval = date.timeIntervalSince1970
        let second = Int64(interval.rounded(.down))
        let millis = min(999, Int((interval - Double(second)) * 1000))
        if second != cachedSecond {
            var time = time_t(second)
            var parts = tm()
            gmtime_r(&time, &parts)
            // Digits by hand: String(format:) would pull in Foundation's formatting machinery for this.
            func padded(_ value: Int32, _ width: Int) -> String {
                let digits = String(value)
                return String(repeating: "0", count: max(0, width - digits.count)) + digits
            }
            cachedPrefix =
                padded(parts.tm_year + 1900, 4) + "-" + padded(parts.tm_mon + 1, 2) + "-" + padded(parts.tm_mday, 2)
                + "T" + padded(parts.tm_hour, 2) + ":" + padded(parts.tm_min, 2) + ":" + padded(parts.tm_sec, 2) + "."
            cachedSecond = second
        }
        let digits = String(millis)
        return cachedPrefix + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }
}
