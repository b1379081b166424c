import Foundation

/// The file beside a journal that holds its reserved sequence ceiling (see `SequenceAllocator`):
/// one decimal number, replaced atomically and synced, so that it survives the journal itself.
struct SequenceFile: Sendable {
    static let name = "sequence"
    let path: String

    init(directory: String) {
        path = (directory as NSString).appendingPathComponent(Self.name)
    }

    /// The number in the file; 0 when there is none or it cannot be read (a journal of its own
    /// is then the only floor).
    func read() -> Int64 {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return 0 }
        return Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Writes `value` durably: the rename must survive a power cut, or the old, lower ceiling could come back.
    /// - Throws: `SystemCallError` naming the call that failed.
    func write(_ value: Int64) throws(SystemCallError) {
        try DurableFile.replace(path, with: Array("\(value)\n".utf8))
    }
}
