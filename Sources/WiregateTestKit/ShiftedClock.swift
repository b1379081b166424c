import Foundation
import Synchronization
import Wiregate

/// A wall clock for one in-process gateway that a test can put behind and then set right, with
/// its own "synchronised" flag: what a Pi that booted offline sees, without touching the
/// machine's clock (which every other test's gateway would feel). The monotonic clock and the
/// boot are the machine's own, as they are on the Pi.
public final class ShiftedClock: Sendable {
    private let state: Mutex<(offset: Duration, synchronised: Bool)>
    private let boot: String?

    /// - Parameters:
    ///   - offset: how far the wall clock is off (negative: behind).
    ///   - synchronised: whether it says it is synchronised.
    ///   - boot: a boot id in place of the machine's (an earlier boot, replayed from the journal).
    public init(offset: Duration, synchronised: Bool, boot: String? = nil) {
        state = Mutex((offset, synchronised))
        self.boot = boot
    }

    /// Steps the wall clock to `offset` from the true time, and sets the flag.
    public func set(offset: Duration, synchronised: Bool) {
        state.withLock { $0 = (offset, synchronised) }
    }

    /// The clocks to give the gateway (its steps are seen by comparing the clocks).
    public var source: TimeSource {
        var system = TimeSource.system
        system.wall = { [self] in
            let offset = state.withLock { $0.offset }
            return Date().addingTimeInterval(
                Double(offset.components.seconds) + Double(offset.components.attoseconds) / 1e18)
        }
        system.synchronised = { [self] in state.withLock { $0.synchronised } }
        system.kernelSteps = false
        if let boot { system.boot = boot }
        return system
    }
}
