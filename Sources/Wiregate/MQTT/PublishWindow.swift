import Synchronization
import WiregateCore

/// The bounded in-flight window, and the hand-off of PUBACKs from libmosquitto's thread.
///
/// libmosquitto queues without limit, so the window is ours (`mqtt.inflight`, default 256). The
/// bookkeeping (which message id is which event, what an answer means) is the pure
/// `InFlightWindow`; this class holds it under a lock and adds the waiting. PUBACKs are recorded
/// here directly from the network thread, with no task hop per message: at tens of thousands of
/// messages a second, a hop per acknowledgement costs more than the broker's round trip. The sink
/// drains the answers in batches, woken by `signals`.
///
/// Telemetry has a share of its own, below what libmosquitto keeps on the wire (the broker's
/// receive maximum: 20 for a default mosquitto), so that a critical event handed over is never
/// queued inside libmosquitto behind telemetry: there are always free places on the wire for it.
/// Critical events have a sender of their own that waits for one free place, not for a batch.
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
        /// Telemetry's share of the window on this connection (see `setConnected`).
        var telemetryLimit: Int
        var waiters: [EventClass: CheckedContinuation<Void, Never>] = [:]

        var telemetryBatch: Int { max(1, telemetryLimit / 4) }

        /// Places `eventClass` may fill now.
        func room(for eventClass: EventClass) -> Int {
            switch eventClass {
            case .critical: window.room
            // Status messages (retained statuses, Home Assistant's configs and states) count in
            // telemetry's share: the places kept for alarms stay theirs.
            case .telemetry:
                min(window.room, max(0, telemetryLimit - window.ordinaryInFlight - window.statusInFlight))
            }
        }

        /// Whether the sender of `eventClass` should go: one place for an alarm; a quarter of
        /// telemetry's share for telemetry (a wake-up per batch, not per message).
        func ready(_ eventClass: EventClass) -> Bool {
            connected && room(for: eventClass) >= (eventClass == .critical ? 1 : telemetryBatch)
        }

        mutating func resumeReadyWaiters() {
            for eventClass in EventClass.allCases where closed || ready(eventClass) {
                waiters.removeValue(forKey: eventClass)?.resume()
            }
        }
    }

    /// A quarter of the window: how many acknowledgements the forwarder waits to hand over at once.
    private let batch: Int

    init(limit: Int) {
        self.limit = limit
        batch = max(1, limit / 4)
        state = Mutex(
            State(window: InFlightWindow(limit: limit) { $0.event.eventClass == .telemetry }, telemetryLimit: limit))
        (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Waits for a live connection with room in the window for `eventClass`.
    /// - Returns: how many events of that class may be sent now; 0 once closed or cancelled.
    func waitForRoom(for eventClass: EventClass) async -> Int {
        while true {
            let room: Int? = state.withLock { state in
                if state.closed { return 0 }
                return state.ready(eventClass) ? state.room(for: eventClass) : nil
            }
            if let room { return room }
            if Task.isCancelled { return 0 }
            await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    // Task.isCancelled under the lock `onCancel` takes: no cancellation slips between.
                    let go = state.withLock { state -> Bool in
                        if state.closed || state.ready(eventClass) || Task.isCancelled { return true }
                        state.waiters.removeValue(forKey: eventClass)?.resume()
                        state.waiters[eventClass] = continuation
                        return false
                    }
                    if go { continuation.resume() }
                }
            } onCancel: {
                state.withLock { state in
                    state.waiters.removeValue(forKey: eventClass)?.resume()
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
    func publish(
        _ event: JournaledEvent?,
        through publish: () -> MosquittoClient.PublishResult
    ) -> (result: MosquittoClient.PublishResult, resend: [JournaledEvent]) {
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
            let waiting = state.waiters.count
            state.resumeReadyWaiters()
            let senderWoken = state.waiters.count < waiting
            switch answer {
            case .refused, .unknown:
                return true  // rare: the sink's forwarder handles and logs them at once
            case .accepted:
                // A woken sender drains the acknowledgements with its next batch: no second wake-up.
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

    var counts: (inFlight: Int, acknowledged: Int, statusAcknowledged: Int, refused: Int, unknown: Int) {
        state.withLock {
            (
                $0.window.inFlight, $0.window.acknowledgedCount, $0.window.acknowledgedStatusCount,
                $0.window.refusedCount, $0.window.unknownCount
            )
        }
    }

    /// Whether a status message of a paced burst may go now: fewer than `limit` of them await
    /// their PUBACK, and telemetry's share (which they count in) has a free place.
    func hasRoomForStatus(limit: Int) -> Bool {
        state.withLock { $0.window.statusInFlight < limit && $0.room(for: .telemetry) >= 1 }
    }

    /// Telemetry's share on the current connection.
    var telemetryLimit: Int { state.withLock { $0.telemetryLimit } }

    /// - Parameter receiveMaximum: how many messages libmosquitto keeps on the wire on this
    ///   connection; telemetry gets that less an eighth (at least one place) kept for alarms.
    func setConnected(_ value: Bool, receiveMaximum: Int? = nil) {
        state.withLock { state in
            state.connected = value
            if let receiveMaximum {
                let wire = max(1, min(limit, receiveMaximum))
                state.telemetryLimit = max(1, wire - max(1, wire / 8))
            }
            state.resumeReadyWaiters()
            // A sender waiting for a connection that went away goes round again (and waits anew).
            if !value {
                for eventClass in EventClass.allCases { state.waiters.removeValue(forKey: eventClass)?.resume() }
            }
        }
    }

    func close() {
        state.withLock { state in
            state.closed = true
            state.resumeReadyWaiters()
        }
    }
}
