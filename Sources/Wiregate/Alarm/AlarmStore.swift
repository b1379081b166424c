import Foundation
import Glibc
import WiregateCore

/// The alarm's state on the card (`alarm.json` beside the journal), replaced durably before each
/// action a change causes, so that a SIGKILL or a power cut brings the alarm back as it was.
///
/// How long the gateway was gone decides how much of a timer is left. Within one boot (the
/// daemon killed and restarted), `CLOCK_BOOTTIME` says it exactly, whatever the wall clock did.
/// Across a power cut only the wall clock can, and only when it was synchronised both when the
/// state was saved and now: a Pi without a clock battery boots with the time it last saved, so
/// otherwise nothing is taken off (a siren sounds its whole remaining time: the safe side).
struct AlarmStore: Sendable {
    static let name = "alarm.json"
    let path: String

    init(directory: String) {
        path = (directory as NSString).appendingPathComponent(Self.name)
    }

    /// What the file holds.
    struct Saved: Codable {
        var snapshot: AlarmStateMachine.Snapshot
        /// `/proc/sys/kernel/random/boot_id` when it was saved.
        var bootID: String?
        /// `CLOCK_BOOTTIME` when it was saved, in seconds.
        var bootTime: Double
        /// The wall clock when it was saved, in seconds since 1970, and whether it was synchronised.
        var wallTime: Double
        var wallClockSynchronised: Bool
    }

    /// The last state saved and how long ago, as far as can be told; nil when there is none (a
    /// first start), or with the reason when the file cannot be used.
    func load() -> Result<(snapshot: AlarmStateMachine.Snapshot, elapsed: Duration)?, AlarmStoreError> {
        guard FileManager.default.fileExists(atPath: path) else { return .success(nil) }
        let saved: Saved
        do {
            saved = try JSONDecoder().decode(Saved.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            return .failure(AlarmStoreError(path: path, reason: "\(error)"))
        }
        let elapsed: Double
        if let bootID = saved.bootID, bootID == Self.bootID() {
            elapsed = Self.bootTime() - saved.bootTime
        } else if saved.wallClockSynchronised && SystemClock.isSynchronised() {
            elapsed = Date().timeIntervalSince1970 - saved.wallTime
        } else {
            elapsed = 0
        }
        return .success((saved.snapshot, .milliseconds(Int64(max(0, elapsed) * 1000))))
    }

    /// Replaces the file with `snapshot`, durably.
    /// - Throws: `SystemCallError` naming the call that failed.
    func save(_ snapshot: AlarmStateMachine.Snapshot) throws {
        let saved = Saved(
            snapshot: snapshot, bootID: Self.bootID(), bootTime: Self.bootTime(),
            wallTime: Date().timeIntervalSince1970, wallClockSynchronised: SystemClock.isSynchronised())
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try DurableFile.replace(path, with: Array(try encoder.encode(saved)), mode: 0o600)
    }

    static func bootID() -> String? {
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Seconds since boot, suspend included.
    static func bootTime() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_BOOTTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}

/// `alarm.json` could not be read as a saved state.
struct AlarmStoreError: Error, CustomStringConvertible {
    var path: String
    var reason: String
    var description: String { "\(path): \(reason)" }
}
