import Foundation
import WiregateCore

/// What happened on one board since the daemon started.
public struct BoardCounters: Sendable, Equatable {
    /// Clean lines read.
    public var lines = 0
    /// Events produced from those lines.
    public var events = 0
    /// Lines that did not decode (nothing of them was published).
    public var malformed = 0
    /// Lines starting with `#`: the board talking about itself.
    public var annotations = 0
    /// Lines the framer threw away, by reason.
    public var rejected: [LineFramer.Rejection: Int] = [:]
    /// Commands written to the board.
    public var commandsWritten = 0
    /// Commands the router passed that could not be written: the board offline, the write failed.
    /// (What the router refuses it counts itself: `CommandRouter.Counters`.)
    public var commandsNotWritten = 0
    /// Times the port was opened.
    public var opens = 0
    /// Times an open port went away (hang-up, read error, unplug).
    public var hangups = 0
    /// Times the board went silent past its `silence_timeout` and was marked offline.
    public var silences = 0
    /// When the board last sent a clean line; nil: not since the start.
    public var lastLineAt: Date?
}
