/// The bounded in-flight window: how many QoS 1 messages may await PUBACK at once.
///
/// libmosquitto queues without limit, so the window is ours; about 100 was fastest
/// on loopback (unlimited is 30x slower). `acquire()` also waits while disconnected,
/// so events stay in the outbox rather than in libmosquitto's memory.
actor PublishWindow {
    let limit: Int
    private(set) var inFlight = 0
    private var connected = false
    private var closed = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { self.limit = limit }

    /// Waits for a free slot on a live connection, and takes it.
    /// - Returns: false once the window is closed (shutting down).
    func acquire() async -> Bool {
        while !closed && (!connected || inFlight >= limit) {
            await withCheckedContinuation { waiters.append($0) }
        }
        guard !closed else { return false }
        inFlight += 1
        return true
    }

    /// Takes a slot without waiting, for status messages that must go out at once.
    func forceAcquire() { inFlight += 1 }

    func release() {
        inFlight = max(0, inFlight - 1)
        wakeAll()
    }

    func setConnected(_ value: Bool) {
        connected = value
        wakeAll()
    }

    func close() {
        closed = true
        wakeAll()
    }

    private func wakeAll() {
        let waiting = waiters
        waiters.removeAll()
        for waiter in waiting { waiter.resume() }
    }
}
