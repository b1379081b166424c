import Synchronization
import WiregateCore

/// The bounded in-flight window, and the hand-off of PUBACKs from libmosquitto's thread.
///
/// libmosquitto queues without limit, so the window is ours (`mqtt.inflight`, default 256:
/// 200 to 1,000 measured alike on loopback, and a quarter of it is what a live alarm may
/// wait for under a telemetry flood, about 1.5 ms). The bookkeeping (which message id is which
/// event, what an answer means) is the pure `InFlightWindow`; this class holds it under a lock
/// and adds the waiting. PUBACKs are recorded here directly from the network thread, with no
/// task hop per message: at tens of thousands of messages a second, a hop per acknowledgement
/// costs more than the broker's round trip. The sink drains the answers in batches, woken by `signals`.
final class PublishWindow: Sendable {
    let limit: Int
    /// Yields when answers are waiting in `takeAcknowledged()` or `takeRefused()`. Coalesced.
    let signals: AsyncStream<Void>
    private let signal: AsyncStream<Void>.Continuation
    private let state: Mutex<State>

    private struct State {
        var window: InFlightWindow<JournaledEvent>
        var connected = false
        var closed = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    /// A quarter of the window: what the sender waits to have free, and what the forwarder waits to have acknowledged.
    private let batch: Int

    init(limit: Int) {
        self.limit = limit
        batch = max(1, limit / 4)
        state = Mutex(State(window: InFlightWindow(limit: limit)))
        (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Waits for a live connection with room in the window.
    ///
    /// Under load the window is full and each PUBACK frees one slot; waiting for a quarter
    /// of the window to be free turns a wake-up per message into one per batch, for a delay
    /// of a few PUBACKs (tens of microseconds on loopback).
    /// - Returns: how many messages may be sent now; 0 once closed or cancelled.
    func waitForRoom() async -> Int {
        @Sendable func hasRoom(_ state: State) -> Bool { state.connected && state.window.room >= batch }
        while true {
            let room: Int? = state.withLock { state in
                if state.closed { return 0 }
                return hasRoom(state) ? state.window.room : nil
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

    /// Hands one message to libmosquitto through `publish` and records the id it gets, under the
    /// window's lock: the PUBACK, handled on the network thread under the same lock, cannot come
    /// before its id is known. (libmosquitto calls the PUBACK callback holding only its callback
    /// mutex, and `publish` takes only its message mutex: no lock order can cross.)
    /// - Parameter event: the event, or nil for a status message.
    /// - Returns: what libmosquitto did, and the events to send again (the library reused an id an
    ///   unanswered message still held: see `InFlightWindow.sent`).
    func publish(_ event: JournaledEvent?,
                 through publish: () -> MosquittoClient.PublishResult) -> (result: MosquittoClient.PublishResult, resend: [JournaledEvent]) {
        state.withLock { state in
            let result = publish()
            guard case .queued(let mid) = result else { return (result, []) }
            return (result, state.window.sent(mid: mid, item: event))
        }
    }

    /// A PUBACK; called on libmosquitto's network thread.
    func answered(mid: Int32, reasonCode: Int32) {
        let notify = state.withLock { state -> Bool in
            let answer = state.window.answered(mid: mid, reasonCode: reasonCode)
            var senderWoken = false
            if state.window.room >= batch, let waiter = state.waiter {
                state.waiter = nil
                waiter.resume()
                senderWoken = true
            }
            switch answer {
            case .refused, .unknown:
                return true // rare: the sink's forwarder handles and logs them at once
            case .accepted:
                // The sender drains the acknowledgements with its next batch: no second wake-up.
                if senderWoken { return false }
                // Not once per PUBACK (a task wake-up each, the biggest cost at high rates): when a
                // batch has gathered, or when nothing is left in flight (a quiet moment: the tail goes at once).
                let acknowledged = state.window.acknowledged.count
                return acknowledged > 0 && (acknowledged >= batch || state.window.inFlight == 0)
            }
        }
        if notify { signal.yield() }
    }

    /// The events acknowledged since the last call, in the order of their PUBACKs.
    func takeAcknowledged() -> [JournaledEvent] {
        state.withLock { $0.window.takeAcknowledged() }
    }

    /// The events the broker refused since the last call, with what each refusal means.
    func takeRefused() -> [(item: JournaledEvent, verdict: PubackVerdict)] {
        state.withLock { $0.window.takeRefused() }
    }

    var counts: (inFlight: Int, acknowledged: Int, refused: Int, unknown: Int) {
        state.withLock { ($0.window.inFlight, $0.window.acknowledgedCount, $0.window.refusedCount, $0.window.unknownCount) }
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
