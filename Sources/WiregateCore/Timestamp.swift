import Foundation

/// RFC 3339 timestamps in UTC with milliseconds (`2026-11-29T13:19:05.123Z`), made fast:
/// the date-and-time part is formatted once per second and reused, since a busy board
/// sends thousands of events within the same second.
public struct TimestampFormatter: Sendable {
    private var cachedSecond: Int64 = .min
    private var cachedPrefix = ""

    public init() {}

    public mutating func string(from date: Date) -> String {
        let interval = date.timeIntervalSince1970
        let second = Int64(interval.rounded(.down))
        let millis = min(999, Int((interval - Double(second)) * 1000))
        if second != cachedSecond {
            var time = time_t(second)
            var parts = tm()
            gmtime_r(&time, &parts)
            cachedPrefix = String(format: "%04d-%02d-%02dT%02d:%02d:%02d.", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                                  Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
            cachedSecond = second
        }
        let digits = String(millis)
        return cachedPrefix + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }
}
