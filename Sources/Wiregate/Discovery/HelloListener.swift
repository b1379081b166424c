import Foundation
import WiregateCore

/// Listens to a freshly plugged port for the hello line its firmware prints after reset.
enum HelloListener {
    /// - Returns: the name in the first hello line within `settle + timeout`, or nil.
    static func listen(path: String, baud: Int, hupcl: Bool, settle: Duration, timeout: Duration,
                       pattern: HelloPattern) async -> String? {
        // The node may still be settling (udev rules, permissions): a few tries.
        var fd: Int32 = -1
        for _ in 0..<10 {
            if let opened = try? SerialPort.open(path: path, baud: baud, hupcl: hupcl) {
                fd = opened
                break
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // No resynchronising: a board that just reset prints its hello line first, and a line
        // cut in half will not match the pattern anyway.
        var framer = LineFramer(maxLineLength: 1024)
        let deadline = ContinuousClock.now + settle + timeout
        var buffer = [UInt8](repeating: 0, count: 512)
        while ContinuousClock.now < deadline, !Task.isCancelled {
            var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            // Never block a cooperative thread: look, then sleep a little.
            guard poll(&ready, 1, 0) >= 0 else { return nil }
            guard ready.revents & Int16(POLLIN) != 0 else {
                try? await Task.sleep(for: .milliseconds(20))
                continue
            }
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { continue }
            var found: String?
            buffer.withUnsafeBytes { bytes in
                framer.feed(UnsafeRawBufferPointer(rebasing: bytes[..<count])) { output in
                    if found == nil, case .line(let line) = output { found = pattern.name(in: line) }
                }
            }
            if let found { return found }
        }
        return nil
    }
}
