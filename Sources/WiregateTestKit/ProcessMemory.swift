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

    private static func field(_ key: String, in path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix(key + ":") }
            .flatMap { Int($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") }
    }
}
