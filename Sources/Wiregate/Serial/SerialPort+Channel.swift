import NIOCore
import NIOPosix

extension SerialPort {
    /// Hands the port to NIO as a channel for reading and writing: NIO owns the descriptor from
    /// then on, and closes it with the channel.
    ///
    /// When NIO refuses it, the port still owns it and closes it (`deinit`): NIO's contract for
    /// `takingOwnershipOfDescriptor(inputOutput:)` is that after a failure the caller still owns
    /// the descriptor. Its code keeps to that for the checks it makes before a channel exists
    /// (`fstat`: not a regular file, a directory or a link; the channel's construction, which
    /// gives the descriptor back): it closes only the `dup` it made for writing. A failure after
    /// that (channel options, our initializer, the registration) closes both inside NIO, whose own
    /// `try!` close of its `dup` then stops the process on EBADF, unless a number reused in
    /// between makes it close a stranger's: that is why the initializer below cannot fail and the
    /// group never shuts down (`.singleton`). On Linux a tty passes every check, so the close on
    /// failure guards against a descriptor NIO refuses (a path that is not a tty reaches here only
    /// in the test); on Darwin, where NIO's SIGPIPE set-up closes and throws, it would be a double close.
    consuming func channel(group: any EventLoopGroup) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await NIOPipeBootstrap(group: group)
                .takingOwnershipOfDescriptor(inputOutput: descriptor) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            // Refused: still the port's, which closes it as it goes.
            _ = consume self
            throw error
        }
        // NIO's now.
        discard self
        return channel
    }
}
