import Foundation

/// Turns one clean line from a board into events: decode, sanitise topic levels, classify.
///
/// Pure: the serial side feeds it lines and counts what comes out.
public struct EventBuilder: Sendable {
    /// What one line turned into.
    public enum Outcome: Sendable, Equatable {
        /// The events in the line, in order.
        case events([Event])
        /// A line starting with `#`: the board talking about itself (a hello, a log line), not data.
        case annotation(String)
        /// A blank line.
        case blank
        /// The line could not be decoded; nothing of it is published.
        case malformed(String)
    }

    /// The board whose lines this builds: its name, decoder, classes and `latest` topics.
    public let board: GatewayConfig.Board
    let topicPrefix: String

    /// A builder for one board's lines.
    /// - Parameters:
    ///   - board: the board that sends the lines.
    ///   - config: the gateway's config, for the topic prefix `<base>/<gateway>/<board>/`.
    public init(board: GatewayConfig.Board, config: GatewayConfig) {
        self.board = board
        self.topicPrefix = config.boardTopicPrefix(board.name)
    }

    /// Decodes one line; a line with any bad message is refused whole, so nothing of it is published.
    /// - Parameters:
    ///   - line: one line from the framer, without its line ending.
    ///   - receivedAt: when the gateway read it, stamped on every event.
    /// - Returns: the events, an annotation, a blank, or why the line is malformed.
    public func outcome(for line: String, receivedAt: Date) -> Outcome {
        if line.allSatisfy(\.isWhitespace) { return .blank }
        if line.first == "#" { return .annotation(line) }
        let messages: [DecodedMessage]
        do {
            messages = try board.decoder.decode(line)
        } catch {
            return .malformed(error.reason)
        }
        var events: [Event] = []
        events.reserveCapacity(messages.count)
        for message in messages {
            // A JSON escape can put what the framer drops from raw lines into a value: NUL (SQLite's
            // text binding cuts there, PostgreSQL refuses it), C0 and C1 controls.
            if message.payload.unicodeScalars.contains(where: {
                $0 != "\t" && ($0.value < 0x20 || (0x7F...0x9F).contains($0.value))
            }) {
                return .malformed("a value holds a control character (NUL, C0 or C1)")
            }
            var levels: [String] = []
            levels.reserveCapacity(message.levels.count)
            for raw in message.levels {
                guard let level = Topic.sanitisedLevel(raw) else {
                    return .malformed("the topic level '\(raw)' is empty once sanitised")
                }
                levels.append(level)
            }
            guard !levels.isEmpty else { return .malformed("no topic") }
            guard levels.count <= Topic.maxDepth else {
                return .malformed("the topic has \(levels.count) levels, more than \(Topic.maxDepth)")
            }
            // `status` and `set` below a board are the gateway's own topics.
            if levels.count == 1, levels[0] == "status" || levels[0] == "set" { levels[0] = "_" + levels[0] }
            let subtopic = levels.joined(separator: "/")
            events.append(
                Event(
                    board: board.name, topic: topicPrefix + subtopic, subtopic: subtopic,
                    payload: message.payload, eventClass: board.classes.eventClass(forSubtopic: subtopic),
                    receivedAt: receivedAt, latest: board.isLatest(subtopic)))
        }
        return .events(events)
    }
}
