import DequeModule
import Logging
import WiregateCore

/// A bounded queue in memory, in front of the broker, until the journal lands.
///
/// When full it drops the oldest telemetry first and critical events only when no
/// telemetry is left; every drop is counted per class and logged once per burst.
public actor MemoryOutbox: EventOutbox {
    public let capacity: Int
    private var critical = Deque<Event>()
    private var telemetry = Deque<Event>()
    private var waiter: CheckedContinuation<Void, Never>?
    private var dropping = false
    private let logger: Logger

    /// Events dropped because the queue was full, per class.
    public private(set) var dropped: [EventClass: Int] = [.critical: 0, .telemetry: 0]

    public init(capacity: Int, logger: Logger) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.logger = logger
    }

    /// Events waiting.
    public var count: Int { critical.count + telemetry.count }

    public func append(_ events: [Event]) {
        for event in events {
            if count >= capacity { dropOldest() }
            switch event.eventClass {
            case .critical: critical.append(event)
            case .telemetry: telemetry.append(event)
            }
        }
        if dropping && count < capacity {
            dropping = false
        }
        wake()
    }

    public func putBack(_ event: Event) {
        if count >= capacity { dropOldest() }
        switch event.eventClass {
        case .critical: critical.prepend(event)
        case .telemetry: telemetry.prepend(event)
        }
        wake()
    }

    public func next() async -> Event? {
        while !Task.isCancelled {
            if let event = critical.popFirst() ?? telemetry.popFirst() { return event }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    // One consumer: the MQTT sink.
                    waiter = continuation
                }
            } onCancel: {
                Task { await self.wake() }
            }
        }
        return nil
    }

    private func wake() {
        waiter?.resume()
        waiter = nil
    }

    private func dropOldest() {
        let victim = telemetry.popFirst() ?? critical.popFirst()
        guard let victim else { return }
        dropped[victim.eventClass, default: 0] += 1
        if !dropping {
            dropping = true
            logger.warning("queue full, dropping the oldest events until the broker takes them", metadata: [
                "capacity": "\(capacity)", "first_dropped_class": "\(victim.eventClass.rawValue)",
                "dropped_telemetry": "\(dropped[.telemetry]!)", "dropped_critical": "\(dropped[.critical]!)",
            ])
        }
    }
}
