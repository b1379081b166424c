import Glibc
import NIOCore
import NIOPosix

extension SerialPort {
    /// Hands an open port to NIO as a channel for reading and writing.
    ///
    /// Who owns `fd` when this throws: NIO's contract for `takingOwnershipOfDescriptor(inputOutput:)`
    /// is that after a failure the caller still owns it. Its code keeps to that for the checks it
    /// makes before a channel exists (`fstat`: not a regular file, a directory or a link; the
    /// channel's construction, which gives the descriptor back): it closes only the `dup` it made
    /// for writing, and we must close `fd`. A failure after that (channel options, our
    /// initializer, the registration) closes both inside NIO, whose own `try!` close of its `dup`
    /// then stops the process on EBADF, unless a number reused in between makes it close a
    /// stranger's: that is why the initializer below cannot fail and the group never shuts down
    /// (`.singleton`). On Linux a tty passes every check, so this close is a guard against a
    /// descriptor NIO refuses (a path that is not a tty reaches here only in the test); on Darwin,
    /// where NIO's SIGPIPE set-up closes and throws, it would be a double close.
    static func channel(
        takingOwnershipOf fd: CInt, group: any EventLoopGroup
    ) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        do {
            return try await NIOPipeBootstrap(group: group)
                .takingOwnershipOfDescriptor(inputOutput: fd) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            Glibc.close(fd)
            throw error
        }
    }
}
