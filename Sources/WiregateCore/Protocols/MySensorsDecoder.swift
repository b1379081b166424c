/// `mysensors`: the MySensors serial API, `node-id;child-sensor-id;command;ack;type;payload`.
///
/// Published with the MySensors MQTT convention, below the board:
/// `<prefix>-out/<node>/<child>/<command>/<ack>/<type>`. Commands come back on
/// `<prefix>-in/<node>/<child>/<command>/<ack>/<type>` and are written to the board
/// as `node;child;command;ack;type;payload`.
///
/// Option: `prefix` (default `mysensors`).
public struct MySensorsDecoder: LineDecoder {
    /// `mysensors`.
    public static let protocolName = "mysensors"

    /// The first level's stem: messages go out on `<prefix>-out/…`, commands come in on `<prefix>-in/…`.
    public let prefix: String

    /// A decoder with the given topic prefix.
    /// - Parameter prefix: a single topic level, `mysensors` by default; not checked here.
    public init(prefix: String = "mysensors") {
        self.prefix = prefix
    }

    /// Reads the `prefix` option; throws `ConfigError` for another key or a prefix that is not one topic level.
    public init(options: ConfigMapping?) throws(ConfigError) {
        self.init()
        guard let options else { return }
        try options.rejectUnknownKeys(["prefix"])
        if let node = options.optional("prefix") {
            let prefix = try node.string()
            if let problem = Topic.problem(inConfiguredLevel: prefix) { throw node.error("the prefix \(problem)") }
            self.init(prefix: prefix)
        }
    }

    /// Upper bounds of the five numeric fields, from the serial API's definition
    /// (node and child ids are 0–255, commands 0–4: presentation, set, req, internal, stream).
    static let fieldNames = ["node-id", "child-sensor-id", "command", "ack", "type"]
    static let fieldLimits = [255, 255, 4, 1, 255]

    /// One message on `<prefix>-out/node/child/command/ack/type`; throws `DecodeError` for a line
    /// without six fields or with a numeric field out of its range.
    public func decode(_ line: String) throws(DecodeError) -> [DecodedMessage] {
        // The payload is the sixth field and may itself hold ';'.
        let fields = line.split(separator: ";", maxSplits: 5, omittingEmptySubsequences: false)
        guard fields.count == 6 else {
            throw DecodeError("expected 6 fields node;child;command;ack;type;payload, found \(fields.count)")
        }
        let numbers = try Self.numbers(Array(fields.prefix(5)))
        return [DecodedMessage(levels: ["\(prefix)-out"] + numbers.map(String.init), payload: String(fields[5]))]
    }

    /// `<prefix>-in/#`: the MySensors topics that carry commands back to the board.
    public var commandFilters: [String] { ["\(prefix)-in/#"] }

    /// The serial line `node;child;command;ack;type;payload` for a command on
    /// `<prefix>-in/node/child/command/ack/type`; nil for another topic, a field out of range, or a
    /// payload holding `;`.
    public func commandLine(levels: [Substring], payload: String) -> String? {
        guard levels.count == 6, levels[0] == "\(prefix)-in",
            let numbers = try? Self.numbers(Array(levels.dropFirst())),
            !payload.contains(";")
        else { return nil }
        return (numbers.map(String.init) + [payload]).joined(separator: ";")
    }

    private static func numbers(_ fields: [Substring]) throws(DecodeError) -> [Int] {
        var numbers: [Int] = []
        for (index, field) in fields.enumerated() {
            guard let value = Int(field), value >= 0, value <= fieldLimits[index] else {
                throw DecodeError("\(fieldNames[index]) '\(field)' is not a number in 0...\(fieldLimits[index])")
            }
            numbers.append(value)
        }
        return numbers
    }
}
