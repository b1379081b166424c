import Foundation
import Glibc

/// What the kernel says of a process's memory, for the benchmarks and the fault campaign.
public enum ProcessMemory {
    /// A value of `/proc/PID/status` in KiB (VmRSS, VmHWM).
    public static func status(_ pid: pid_t, _ key: String) -> Int? {
        field(key, in: "/proc/\(pid)/status")
    }

    /// The process's dirty private memory in KiB (`Private_Dirty` of `/proc/PID/smaps_rollup`):
    /// its heap and stacks, what it cannot give back to the page cache. The memory bound is on this.
    public static func privateDirty(_ pid: pid_t) -> Int? {
        field("Private_Dirty", in: "/proc/\(pid)/smaps_rollup")
    }

    /// Private_Dirty in KiB per mapping of `/proc/PID/smaps`, largest first, anonymous mappings
    /// (other malloc arenas, thread stacks) summed under `[anon]`: where the bound goes.
    public static func privateDirtyByMapping(_ pid: pid_t) -> [(mapping: String, kib: Int)] {
        // Read to the end: procfs files report size 0, and smaps runs to hundreds of KiB.
        guard let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/smaps"),
            let data = try? handle.readToEnd()
        else { return [] }
        try? handle.close()
        let text = String(decoding: data, as: UTF8.self)
        var totals: [String: Int] = [:]
        var current = "[anon]"
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if let first = fields.first, first.contains("-"), first.allSatisfy({ $0.isHexDigit || $0 == "-" }) {
                // address perms offset dev inode [path]
                current = fields.count > 5 ? fields[5...].joined(separator: " ") : "[anon]"
            } else if fields.first == "Private_Dirty:", fields.count > 1, let kib = Int(fields[1]), kib > 0 {
                totals[current, default: 0] += kib
            }
        }
        return totals.map { (mapping: $0.key, kib: $0.value) }.sorted { $0.kib > $1.kib }
    }

    private static func field(_ key: String, in path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix(key + ":") }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
    }
}
