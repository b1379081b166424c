import Synchronization

/// The bounded in-flight window, and the hand-off of PUBACKs from libmosquitto's thread.
///
/// libmosquitto queues without limit, so the window is ours (`mqtt.inflight`, default 256:
/// 200 to 1,000 measured alike on loopback, and a quarter of it is what a live alarm may
/// wait for under a telemetry flood, about 1.5 ms). PUBACKs are recorded here directly from the
/// network thread, under a lock, with no task hop per message: at tens of thousands of
/// messages a second, a hop per acknowledgement costs more than the broker's round trip.
/// The sink drains the acknowledged events in batches, woken by `signals`.
final class PublishWindow: Sendable {
    let limit: Int
    /// Yields when acknowledged events are waiting in `takeAcknowledged()`. Coalesced.
    let signals: AsyncStream<Void>
    private let signal: AsyncStream<Void>.Continuation
    private let state = Mutex(State())

    private struct State {
        var inFlight = 0
        var connected = false
        var closed = false
        var waiter: CheckedContinuation<Void, Never>?
        /// Published, awaiting PUBACK: the event, or nil for a status message.
        var awaiting: [Int32: JournaledEvent?] = [:]
        /// PUBACKs that came before `sent` recorded their message id (they race on two threads).
        var early: Set<Int32> = []
        var acknowledged: [JournaledEvent] = []
        var acknowledgedCount = 0
        var refusedCount = 0

        /// Counts an acknowledgement; returns whether the sink's forwarder must be woken to drain them.
        ///
        /// Not once per PUBACK (a task wake-up each, the biggest cost at high rates): when a batch
        /// has gathered, or when nothing is left in flight (a quiet moment: the tail goes at once).
        mutating func record(_ event: JournaledEvent?, batch: Int) -> Bool {
            acknowledgedCount += 1
            if let event { acknowledged.append(event) }
            return !acknowledged.isEmpty && (acknowledged.count == batch || inFlight == 0)
        }
    }

    /// A quarter of the window: what the sender waits to have free, and what the forwarder waits to have acknowledged.
    private let batch: Int

    init(limit: Int) {
        self.limit = limit
        batch = max(1, limit / 4)
        (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Waits for a live connection with room in the window.
    ///
    /// Under load the window is full and each PUBACK frees one slot; waiting for a quarter
    /// of the window to be free turns a wake-up per message into one per batch, for a delay
    /// of a few PUBACKs (tens of microseconds on loopback).
    /// - Returns: how many messages may be sent now; 0 once closed or cancelled.
    func waitForRoom() async -> Int {
        func hasRoom(_ state: State) -> Bool { state.connected && limit - state.inFlight >= batch }
        while true {
            let room: Int? = state.withLock { state in
                if state.closed { return 0 }
                return hasRoom(state) ? limit - state.inFlight : nil
            }
            if let room { return room }
            if Task.isCancelled { return 0 }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    // Task.isCancelled under the lock `onCancel` takes: no cancellation slips between.
                    let ready = state.withLock { state -> Bool in
                        if state.closed || hasRoom(state) || Task.isCancelled { return true }
                        state.waiter?.resume()
                        state.waiter = continuation
                        return false
                    }
                    if ready { continuation.resume() }
                }
            } onCancel: {
                state.withLock { state in
                    state.waiter?.resume()
                    state.waiter = nil
                }
            }
        }
    }

    /// Records a message handed to libmosquitto; `event` is nil for a status message.
    func sent(mid: Int32, event: JournaledEvent?) {
        let notify = state.withLock { state -> Bool in
            if state.early.remove(mid) != nil {
                return state.record(event, batch: batch)
            }
            state.inFlight += 1
            state.awaiting[mid] = .some(event)
            return false
        }
        if notify { signal.yield() }
    }

    /// A PUBACK; called on libmosquitto's network thread.
    func acknowledged(mid: Int32, reasonCode: Int32) {
        let notify = state.withLock { state -> Bool in
            if reasonCode >= 0x80 { state.refusedCount += 1 }
            guard let event = state.awaiting.removeValue(forKey: mid) else {
                state.early.insert(mid)
                return false
            }
            state.inFlight -= 1
            let notify = state.record(event, batch: batch)
            if limit - state.inFlight >= batch, let waiter = state.waiter {
                // The sender drains the acknowledgements with its next batch: no second wake-up.
                state.waiter = nil
                waiter.resume()
                return false
            }
            return notify
        }
        if notify { signal.yield() }
    }

    /// The events acknowledged since the last call, in the order of their PUBACKs.
    func takeAcknowledged() -> [JournaledEvent] {
        state.withLock { state in
            defer { state.acknowledged.removeAll(keepingCapacity: true) }
            return state.acknowledged
        }
    }

    var counts: (inFlight: Int, acknowledged: Int, refused: Int) {
        state.withLock { ($0.inFlight, $0.acknowledgedCount, $0.refusedCount) }
    }

    func setConnected(_ value: Bool) {
        state.withLock { state in
            state.connected = value
            state.waiter?.resume()
            state.waiter = nil
        }
    }

    func close() {
        state.withLock { state in
            state.closed = true
            state.waiter?.resume()
            state.waiter = nil
        }
    }
}
