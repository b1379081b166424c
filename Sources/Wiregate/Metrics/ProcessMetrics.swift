import CoreMetrics
import Foundation
import Glibc
import Synchronization

/// The `process_*` metrics every Prometheus client library exports, read from `/proc/self` at
/// each scrape (swift-prometheus has none): the same names and meanings, so the usual
/// dashboards and rules work on the gateway too.
final class ProcessMetrics: Sendable {
    private let cpu: FloatingPointCounter
    private let resident: Gauge
    private let virtual: Gauge
    private let openFDs: Gauge
    private let maxFDs: Gauge
    /// The CPU seconds already counted: the counter only goes up by the difference.
    private let counted = Mutex<Double>(0)
    private static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    private static let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))

    init(factory: any MetricsFactory) {
        cpu = FloatingPointCounter(label: "process_cpu_seconds_total", factory: factory)
        resident = Gauge(label: "process_resident_memory_bytes", factory: factory)
        virtual = Gauge(label: "process_virtual_memory_bytes", factory: factory)
        openFDs = Gauge(label: "process_open_fds", factory: factory)
        maxFDs = Gauge(label: "process_max_fds", factory: factory)
        let start = Gauge(label: "process_start_time_seconds", factory: factory)
        if let stat = Self.stat(), let bootTime = Self.bootTime() {
            start.record(bootTime + stat.startTicks / Self.ticksPerSecond)
        }
    }

    /// Reads `/proc/self` now; a field that cannot be read keeps its last value.
    func update() {
        if let stat = Self.stat() {
            let seconds = (stat.userTicks + stat.systemTicks) / Self.ticksPerSecond
            let delta = counted.withLock { counted -> Double in
                defer { counted = max(counted, seconds) }
                return seconds - counted
            }
            if delta > 0 { cpu.increment(by: delta) }
            resident.record(stat.residentPages * Self.pageSize)
            virtual.record(stat.virtualBytes)
        }
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            // Less the descriptor the listing itself had open.
            openFDs.record(max(0, entries.count - 1))
        }
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 { maxFDs.record(Double(limit.rlim_cur)) }
    }

    /// The process's resident memory now, in bytes; nil when `/proc/self/stat` cannot be read.
    static func residentBytes() -> Double? { stat().map { $0.residentPages * pageSize } }

    /// The machine's memory from `/proc/meminfo`: total and available, in bytes.
    static func machineMemory() -> (total: Double, available: Double)? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        var fields: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let kilobytes = Double(parts[1]) else { continue }
            fields[String(parts[0].dropLast())] = kilobytes * 1024
        }
        guard let total = fields["MemTotal"], let available = fields["MemAvailable"] else { return nil }
        return (total, available)
    }

    private struct Stat {
        var userTicks: Double
        var systemTicks: Double
        var startTicks: Double
        var virtualBytes: Double
        var residentPages: Double
    }

    /// `/proc/self/stat`'s fields after the command name, which may itself hold spaces and
    /// parentheses: split after its last `)`.
    private static func stat() -> Stat? {
        guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        // Field 3 (state) is the first after the name: utime is field 14, so index 11 here.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 21, let user = Double(fields[11]), let system = Double(fields[12]),
            let start = Double(fields[19]), let virtual = Double(fields[20]), let resident = Double(fields[21])
        else { return nil }
        return Stat(
            userTicks: user, systemTicks: system, startTicks: start, virtualBytes: virtual, residentPages: resident)
    }

    /// The boot time (`btime` of `/proc/stat`), Unix time.
    private static func bootTime() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
