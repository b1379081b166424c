import NIOCore
import NIOPosix
import WiregateCore

/// Listens to a freshly plugged port for the hello line its firmware prints after reset.
///
/// Read as the boards' readers read (NIO's event loop, epoll): no thread and no polling while it
/// waits for the board to speak.
enum HelloListener {
    /// - Returns: the name in the first hello line within `settle + timeout`, or nil.
    static func listen(
        path: String, baud: Int, hupcl: Bool, settle: Duration, timeout: Duration,
        pattern: HelloPattern, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async -> String? {
        // The node may still be settling (udev rules, permissions): a few tries.
        var opened: SerialPort?
        for _ in 0..<10 {
            opened = try? SerialPort.open(path: path, baud: baud, hupcl: hupcl)
            if opened != nil { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        guard let port = opened.take(), let channel = try? await port.channel(group: group) else {
            return nil
        }
        let listening = settle + timeout
        // The channel (and so the port) is closed when this returns, found or not.
        return try? await channel.executeThenClose { inbound, _ in
            try await withThrowingTaskGroup(of: String?.self) { tasks in
                tasks.addTask {
                    // No resynchronising: a board that just reset prints its hello line first, and
                    // a line cut in half will not match the pattern anyway.
                    var framer = LineFramer(maxLineLength: 1024)
                    for try await buffer in inbound {
                        var found: String?
                        buffer.withUnsafeReadableBytes { bytes in
                            framer.feed(bytes) { output in
                                if found == nil, case .line(let line) = output { found = pattern.name(in: line) }
                            }
                        }
                        if let found { return found }
                    }
                    return nil  // the port went away
                }
                tasks.addTask {
                    try await Task.sleep(for: listening)
                    return nil
                }
                defer { tasks.cancelAll() }
                return try await tasks.next() ?? nil
            }
        }
    }
}
