import Foundation
import Glibc
import NIOPosix
import Testing
import WiregateTestKit

@testable import Wiregate

/// The descriptor of a port NIO refused is closed, not leaked (every failed attempt of a board
/// that keeps reappearing would cost one).
@Suite struct SerialChannelTests {
    @Test func aDescriptorNIORefusesIsClosed() async throws {
        // NIO refuses a regular file before it makes a channel: the failure that leaves the
        // descriptor with the caller.
        let path = temporaryPath("channel")
        try #require(FileManager.default.createFile(atPath: path, contents: Data("not a tty".utf8)))
        defer { unlink(path) }
        let fd = open(path, O_RDWR | O_CLOEXEC)
        try #require(fd >= 0)
        var before = stat()
        try #require(fstat(fd, &before) == 0)
        await #expect(throws: (any Error).self) {
            _ = try await SerialPort(takingOwnershipOf: fd).channel(group: MultiThreadedEventLoopGroup.singleton)
        }
        // Still open on this very file means leaked. (A closed number may be reused at once by a
        // test running beside this one, so "is fd open" alone would not tell; the inode does.)
        var after = stat()
        let stillOurs = fstat(fd, &after) == 0 && after.st_ino == before.st_ino && after.st_dev == before.st_dev
        #expect(!stillOurs, "descriptor \(fd) of the refused file is still open")
    }
}
