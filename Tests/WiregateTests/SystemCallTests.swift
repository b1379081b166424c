import Glibc
import Testing
import Wiregate

/// The one system-call helper: would-block is a value, any other failure names the call.
@Suite struct SystemCallTests {
    @Test func wouldBlockIsAValueAndOtherFailuresNameTheCall() throws {
        var ends: [CInt] = [0, 0]
        #expect(pipe(&ends) == 0)
        _ = fcntl(ends[0], F_SETFL, O_NONBLOCK)
        defer { close(ends[0]); close(ends[1]) }
        var byte: UInt8 = 0
        let empty = try SystemCall.retryingUnlessWouldBlock("read", "pipe") { read(ends[0], &byte, 1) }
        guard case .wouldBlock = empty else { Issue.record("an empty non-blocking pipe: \(empty)"); return }

        byte = 42
        #expect(try SystemCall.retrying("write", "pipe") { write(ends[1], &byte, 1) } == 1)
        byte = 0
        let full = try SystemCall.retryingUnlessWouldBlock("read", "pipe") { read(ends[0], &byte, 1) }
        guard case .done(1) = full, byte == 42 else { Issue.record("a byte waiting: \(full), \(byte)"); return }

        #expect {
            try SystemCall.retrying("write", "fd -1") { write(-1, &byte, 1) }
        } throws: { error in
            guard let error = error as? SystemCallError else { return false }
            return error.code == EBADF && error.description.hasPrefix("write(fd -1): ")
        }
    }
}
