/// `raw`: the line itself is the payload, on one configured subtopic.
///
/// Option: `topic` (default `line`), a fixed topic below the board.
public struct RawLineDecoder: LineDecoder {
    /// `raw`.
    public static let protocolName = "raw"

    /// The levels of the configured `topic`, on which every line is published.
    public let levels: [String]

    /// A decoder publishing each line on `topic`.
    /// - Parameter topic: a fixed topic below the board, levels split on `/`; not checked here.
    public init(topic: String = "line") {
        levels = topic.split(separator: "/").map(String.init)
    }

    /// Reads the `topic` option; throws `ConfigError` for another key, or a topic the config may not
    /// name (a wildcard, an empty level, a leading `$`).
    public init(options: ConfigMapping?) throws(ConfigError) {
        self.init()
        guard let options else { return }
        try options.rejectUnknownKeys(["topic"])
        if let node = options.optional("topic") {
            let topic = try node.string()
            if let problem = Topic.problem(inConfiguredTopic: topic) { throw node.error("the topic \(problem)") }
            self.init(topic: topic)
        }
    }

    /// One message: the whole line on `levels`; never throws.
    public func decode(_ line: String) throws(DecodeError) -> [DecodedMessage] {
        [DecodedMessage(levels: levels, payload: line)]
    }
}
