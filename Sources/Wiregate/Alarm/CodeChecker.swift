import CCrypt
import Dispatch
import WiregateCore

/// Checks an entered code against the configured crypt(3) hashes with libxcrypt's `crypt_r`
/// (yescrypt, as `mkpasswd -m yescrypt` makes them): no hashing of our own, and the code itself
/// is never kept, logged or compared in clear.
///
/// yescrypt is slow on purpose (tens of milliseconds per hash on a Pi): checks run one at a time
/// on a queue of their own, never on Swift's shared pool, where they would hold up the alarm's
/// own decisions and the boards' readers.
public struct CodeChecker: Sendable {
    private let codes: [AlarmSettings.Code]
    private static let queue = DispatchQueue(label: "wiregate.alarm.codes")

    /// - Parameter codes: the configured codes, by name, as hashes.
    public init(codes: [AlarmSettings.Code]) {
        self.codes = codes
    }

    /// The code's verdict: the name of the first code it matches, `.wrong` when it matches none,
    /// `.none` when nothing was entered.
    /// - Parameter code: what was entered, as typed.
    public func check(_ code: String?) async -> AlarmStateMachine.Code {
        guard let code, !code.isEmpty else { return .none }
        let codes = self.codes
        return await withCheckedContinuation { continuation in
            Self.queue.async {
                // Every hash is checked, matched or not: the time taken says nothing of which one matched.
                var verdict = AlarmStateMachine.Code.wrong
                for entry in codes where Self.matches(code, hash: entry.hash) && verdict == .wrong {
                    verdict = .valid(name: entry.name)
                }
                continuation.resume(returning: verdict)
            }
        }
    }

    /// Whether `code` hashes to `hash` under the hash's own method and salt.
    /// - Returns: false for a hash libcrypt cannot use (it answers with a string starting with `*`).
    static func matches(_ code: String, hash: String) -> Bool {
        guard let computed = Self.crypt(code, setting: hash).map({ Array($0.utf8) }) else { return false }
        let expected = Array(hash.utf8)
        guard computed.count == expected.count else { return false }
        // In constant time: a comparison that stops at the first difference tells how much matched.
        var difference: UInt8 = 0
        for (a, b) in zip(computed, expected) { difference |= a ^ b }
        return difference == 0
    }

    /// Whether libcrypt can check codes against `hash`: a known method, a well-formed salt and
    /// cost. A mistyped or truncated hash would leave an alarm no code can disarm; the config
    /// loader refuses it before the daemon starts.
    public static func isUsable(_ hash: String) -> Bool {
        guard let computed = crypt("", setting: hash) else { return false }
        // The same method and salt, and a hash of the same length as the one given.
        return computed.utf8.count == hash.utf8.count
    }

    /// `crypt_r(code, setting)`; nil when libcrypt refuses the setting.
    private static func crypt(_ code: String, setting: String) -> String? {
        // crypt_data is 32 KiB: on the heap, zeroed as crypt_r asks.
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        let bytes = UnsafeMutableRawPointer(data)
        let size = MemoryLayout<crypt_data>.size
        defer {
            // The code's trace in the work area goes with it.
            bytes.initializeMemory(as: UInt8.self, repeating: 0, count: size)
            data.deallocate()
        }
        bytes.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        guard let result = crypt_r(code, setting, data) else { return nil }
        let text = String(cString: result)
        return text.hasPrefix("*") ? nil : text
    }
}
