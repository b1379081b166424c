/// `raw`: the line itself is the payload, on one configured subtopic.
///
/// Option: `topic` (default `line`), a fixed topic below the board.
public struct RawLineDecoder: LineDecoder {
    public static let protocolName = "raw"

    public let levels: [String]

    public init(topic: String = "line") {
        levels = topic.split(separator: "/").map(String.init)
    }

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

    public func decode(_ line: String) throws(DecodeError) -> [DecodedMessage] {
        [DecodedMessage(levels: levels, payload: line)]
    }
}
