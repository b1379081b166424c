import Foundation

/// A new, empty directory under the system's temporary directory, named `wiregate-<name>-<uuid>`.
public func makeTemporaryDirectory(_ name: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("wiregate-\(name)-\(UUID())").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
