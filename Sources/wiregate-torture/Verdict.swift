import CMosquitto

/// A numbered line of the campaign: board `board`, key `door` (critical) or `temperature`
/// (telemetry), value `n`. Its topic is `wiregate/<gateway>/b<board>/<key>` and its payload `n`.
struct LineKey: Hashable, Sendable, CustomStringConvertible {
    var board: Int
    var critical: Bool
    var n: Int

    var key: String { critical ? "door" : "temperature" }
    var description: String { "b\(board)/\(key)=\(n)" }

    /// The line's key from a topic and payload, when they are one of the campaign's numbered lines.
    init?(topic: String, payload: String, prefix: String) {
        guard topic.hasPrefix(prefix), let n = Int(payload) else { return nil }
        let levels = topic.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        // "b\(n)" exactly: "b01" is no board of the campaign's.
        guard levels.count == 2, levels[0].hasPrefix("b"), let board = Int(levels[0].dropFirst()),
            levels[0] == "b\(board)",
            levels[1] == "door" || levels[1] == "temperature"
        else { return nil }
        self.init(board: board, critical: levels[1] == "door", n: n)
    }

    init(board: Int, critical: Bool, n: Int) {
        self.board = board
        self.critical = critical
        self.n = n
    }
}

/// Where an event must arrive.
enum Destination: String, Sendable, CaseIterable {
    case mqtt = "the MQTT subscriber"
    case backend = "the Django app"
}

/// What arrived at one destination, in the order it arrived.
struct Arrival: Sendable {
    var topic: String
    var payload: String
    /// The gateway's sequence number (the `seq` user property; the backend's column).
    var seq: Int64?
    /// The board as the backend stored it (nil at MQTT, where the topic says it).
    var board: String?
    /// The class as the backend stored it (nil at MQTT).
    var eventClass: String? = nil
}

/// Checks the guarantees at the end of a campaign. Pure: it gets what was written and what
/// arrived, and returns what broke.
struct Verdict: Sendable {
    var gateway: String
    var boards: Int
    /// Every numbered line written, and whether the gateway was promised it (running, the board open).
    var written: [(key: LineKey, promised: Bool, at: Duration)]
    /// Lines a fault may cost a destination (see `Campaign`), which are therefore not required there.
    var excused: [Destination: Set<LineKey>]
    var arrivals: [Destination: [Arrival]]
    /// The highest private dirty memory seen, and the bound, in KiB.
    var peakPrivateDirty: Int
    var memoryBound: Int
    /// What went wrong with the processes themselves (a stop that hung, an exit by itself).
    var problems: [String] = []

    struct Finding: Sendable, CustomStringConvertible {
        var guarantee: String
        var detail: String
        var description: String { "\(guarantee): \(detail)" }
    }

    var prefix: String { "wiregate/\(gateway)/" }

    func findings() -> [Finding] {
        var findings = problems.map { Finding(guarantee: "the gateway process", detail: $0) }
        let promised = Set(written.filter(\.promised).map(\.key))
        var seqContent: [Int64: (String, Destination)] = [:]
        for destination in Destination.allCases {
            let arrivals = self.arrivals[destination] ?? []
            let keys = arrivals.compactMap { LineKey(topic: $0.topic, payload: $0.payload, prefix: prefix) }
            // 1. Every promised event arrived (but those a fault was allowed to cost).
            let missing = promised.subtracting(excused[destination] ?? []).subtracting(keys)
            if !missing.isEmpty {
                let critical = missing.filter(\.critical).count
                let times = Dictionary(written.map { ($0.key, $0.at) }, uniquingKeysWith: { first, _ in first })
                // The seq another destination saw it under, to find it in the gateway's log.
                var seqs: [LineKey: Int64] = [:]
                for arrival in self.arrivals.values.joined() {
                    if let key = LineKey(topic: arrival.topic, payload: arrival.payload, prefix: prefix),
                        let seq = arrival.seq
                    {
                        seqs[key] = seq
                    }
                }
                let examples = missing.sorted { times[$0]! < times[$1]! }.prefix(8)
                    .map { "\($0) (written at \(times[$0]!.seconds)\(seqs[$0].map { ", seq \($0)" } ?? ""))" }
                findings.append(
                    Finding(
                        guarantee: "lost at \(destination.rawValue)",
                        detail: "\(missing.count) events (\(critical) critical), e.g. \(examples)"))
            }
            // 2. First deliveries per board and class in order.
            var last: [String: Int] = [:], seen: Set<LineKey> = []
            var disorders: [String] = []
            for key in keys where seen.insert(key).inserted {
                let stream = "b\(key.board)/\(key.key)"
                if let previous = last[stream], key.n < previous {
                    disorders.append("\(stream): \(key.n) after \(previous)")
                }
                last[stream] = max(last[stream] ?? .min, key.n)
            }
            if !disorders.isEmpty {
                findings.append(
                    Finding(
                        guarantee: "out of order at \(destination.rawValue)",
                        detail: "\(disorders.count) first deliveries, e.g. \(disorders.prefix(5))"))
            }
            // 3. No `<gateway>:<seq>` stands for two events, here or across the destinations.
            var reused: [String] = []
            for arrival in arrivals {
                guard let seq = arrival.seq else { continue }
                let content = "\(arrival.topic) \(arrival.payload)"
                if let (earlier, at) = seqContent[seq], earlier != content {
                    reused.append("seq \(seq): '\(earlier)' at \(at.rawValue), '\(content)' at \(destination.rawValue)")
                } else {
                    seqContent[seq] = (content, destination)
                }
            }
            if !reused.isEmpty {
                findings.append(
                    Finding(guarantee: "sequence number reused", detail: "\(reused.count), e.g. \(reused.prefix(3))"))
            }
            if destination == .backend {
                let misclassed = arrivals.filter { arrival in
                    guard let key = LineKey(topic: arrival.topic, payload: arrival.payload, prefix: prefix) else {
                        return false
                    }
                    return arrival.eventClass != (key.critical ? "critical" : "telemetry")
                }
                if !misclassed.isEmpty {
                    findings.append(
                        Finding(
                            guarantee: "stored under the wrong class at the Django app",
                            detail:
                                "\(misclassed.count), e.g. \(misclassed.prefix(3).map { "\($0.topic)=\($0.payload) as \($0.eventClass ?? "?")" })"
                        ))
                }
                let counts = Dictionary(keys.map { ($0, 1) }, uniquingKeysWith: +).filter { $0.value > 1 }
                if !counts.isEmpty {
                    findings.append(
                        Finding(
                            guarantee: "stored twice at the Django app",
                            detail:
                                "\(counts.count) events under two ids, e.g. \(counts.keys.prefix(5).map(\.description))"
                        ))
                }
            }
            // 4. Nothing escapes its board's subtree, and every topic is one libmosquitto accepts.
            var escaped: [String] = []
            for arrival in arrivals where !isInside(arrival) { escaped.append(arrival.topic) }
            if !escaped.isEmpty {
                findings.append(
                    Finding(
                        guarantee: "escaped its board's subtree at \(destination.rawValue)",
                        detail: "\(escaped.count) messages, e.g. \(escaped.prefix(5).map { "'\($0)'" })"))
            }
        }
        // 5. Memory.
        if peakPrivateDirty > memoryBound {
            findings.append(
                Finding(
                    guarantee: "memory bound",
                    detail: "private dirty memory reached \(peakPrivateDirty) KiB, the bound is \(memoryBound) KiB"))
        }
        return findings
    }

    /// Whether a message stays in its board's subtree (or is one of the gateway's own: its status, its health) and is a
    /// topic libmosquitto's own validators accept.
    func isInside(_ arrival: Arrival) -> Bool {
        let topic = arrival.topic
        guard mosquitto_validate_utf8(topic, Int32(topic.utf8.count)) == Int32(MOSQ_ERR_SUCCESS.rawValue),
            mosquitto_pub_topic_check2(topic, topic.utf8.count) == Int32(MOSQ_ERR_SUCCESS.rawValue)
        else { return false }
        // The gateway's own topics: its status and its health report.
        if topic == prefix + "status" || topic == prefix + "health" { return arrival.board == nil }
        guard topic.hasPrefix(prefix) else { return false }
        let board = topic.dropFirst(prefix.count).prefix { $0 != "/" }
        guard let number = board.first == "b" ? Int(board.dropFirst()) : nil, (0..<boards).contains(number),
            board == "b\(number)",
            topic.count > prefix.count + board.count + 1
        else { return false }
        return arrival.board.map { $0 == String(board) } ?? true
    }
}
