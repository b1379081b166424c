import NIOCore
import NIOPosix

extension SerialPort {
    /// The most bytes one read takes from the port: a few lines (a USB CDC packet is 64 bytes).
    static let readSize = 512

    /// How many reads wait in memory for the board's reader before NIO stops reading the port.
    ///
    /// NIO's default (10) is about 10 lines at a line a read, 30 ms of a 115200-baud board: a
    /// reader held up longer than that (its task waiting for a pool thread on a loaded Pi, the
    /// journal's actor busy with a bounds pass) left the lines in the kernel, whose tty buffer
    /// holds about 3.5 s of such a board, and its later lines were lost (an intrusion among
    /// them: 271 lines in a CI run). 4,096 reads of at most `readSize` bytes is at most 2 MiB per
    /// board, and at one line a read still 13 s of lines at 300 a second
    /// (`SlowJournalTests.aReaderHeldUpEightSecondsLosesNoLine`). That memory is outside the
    /// journal's bounds, and a board faster than any UART (see `Journal.enqueue`) is held up at
    /// its port only once it is full: 2 MiB later than with NIO's default.
    static let readsBuffered = NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark(
        lowWatermark: 1_024, highWatermark: 4_096)

    /// Hands the port to NIO as a channel for reading and writing: NIO owns the descriptor from
    /// then on, and closes it with the channel.
    ///
    /// When NIO refuses it, the port still owns it and closes it (`deinit`): NIO's contract for
    /// `takingOwnershipOfDescriptor(inputOutput:)` is that after a failure the caller still owns
    /// the descriptor. Its code keeps to that for the checks it makes before a channel exists
    /// (`fstat`: not a regular file, a directory or a link; the channel's construction, which
    /// gives the descriptor back): it closes only the `dup` it made for writing. A failure after
    /// that (channel options: the read size here, which every pipe channel takes; our
    /// initializer; the registration) closes both inside NIO, whose own
    /// `try!` close of its `dup` then stops the process on EBADF, unless a number reused in
    /// between makes it close a stranger's: that is why the initializer below cannot fail and the
    /// group never shuts down (`.singleton`). On Linux a tty passes every check, so the close on
    /// failure guards against a descriptor NIO refuses (a path that is not a tty reaches here only
    /// in the test); on Darwin, where NIO's SIGPIPE set-up closes and throws, it would be a double close.
    consuming func channel(group: any EventLoopGroup) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await NIOPipeBootstrap(group: group)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: Self.readSize))
                .takingOwnershipOfDescriptor(inputOutput: descriptor) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(backPressureStrategy: Self.readsBuffered))
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
