import Glibc
import NIOCore
import NIOPosix

extension SerialPort {
    /// Hands an open port to NIO as a channel for reading and writing.
    ///
    /// Who owns `fd` when this throws: NIO's contract for `takingOwnershipOfDescriptor(inputOutput:)`
    /// is that after a failure the caller still owns the descriptor, and its code keeps to it: it
    /// checks the descriptor (`fstat`: not a regular file) and wraps it before any event-loop work,
    /// and failing those it returns having closed only the `dup` it made for writing (with `try!`,
    /// so a descriptor its channel had already closed would stop the process, not come back here).
    /// So a throw that reaches us left `fd` open and ours: close it, or every failed attempt of a
    /// board that keeps coming back leaks one (the daemon would run out after a few thousand).
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
