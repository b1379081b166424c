import Foundation

/// A yescrypt hash of `code`, made by Debian's `mkpasswd` (the whois package), as the README
/// tells a user to make one: the tests and the benchmark use the documented command itself.
/// - Throws: when mkpasswd cannot be run.
public func yescryptHash(of code: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/mkpasswd")
    process.arguments = ["-m", "yescrypt", "--stdin"]
    let input = Pipe()
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try process.run()
    input.fileHandleForWriting.write(Data((code + "\n").utf8))
    try input.fileHandleForWriting.close()
    process.waitUntilExit()
    return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
}
