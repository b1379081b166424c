/// `influx`: InfluxDB line protocol, one message per field.
///
/// `measurement[,tag=value…] field=value[,field=value…] [timestamp]`, with the
/// protocol's escapes (`\,` `\ ` `\=` in names, `\"` `\\` in strings). Payloads are
/// the field values as text: `1i`/`1u` lose their suffix, strings their quotes and
/// escapes, booleans become `true`/`false`. The timestamp is checked but not used:
/// a board's clock is not trusted, the gateway stamps the time it read the line.
/// Lines starting with `#` are comments in the protocol, and never reach a decoder.
///
/// Option: `topic`, a template over `measurement`, `field` and the tag keys
/// (default `{measurement}/{field}`).
public struct InfluxLineDecoder: LineDecoder {
    /// `influx`.
    public static let protocolName = "influx"

    /// The topic of each field's message, over `measurement`, `field` and the tag keys.
    public let topic: TopicTemplate

    /// A decoder with the given topic template.
    /// - Parameter topic: `{measurement}/{field}` by default.
    public init(topic: TopicTemplate = try! TopicTemplate("{measurement}/{field}")) {
        self.topic = topic
    }

    /// Reads the `topic` option; throws `ConfigError` for another key or a bad template.
    public init(options: ConfigMapping?) throws(ConfigError) {
        self.init()
        guard let options else { return }
        try options.rejectUnknownKeys(["topic"])
        if let node = options.optional("topic") {
            do { self.init(topic: try TopicTemplate(try node.string())) } catch let error as TemplateError {
                throw node.error("bad topic template: \(error.reason)")
            } catch let error as ConfigError { throw error } catch { throw node.error("\(error)") }
        }
    }

    /// One message per field, in line order; throws `DecodeError` for a line the protocol does not
    /// allow, or one that lacks a tag the template names.
    public func decode(_ line: String) throws(DecodeError) -> [DecodedMessage] {
        var scanner = Scanner(Array(line.utf8))
        let measurement = try scanner.name(stoppingAt: [Scanner.comma, Scanner.space], what: "measurement")
        guard !measurement.isEmpty else { throw DecodeError("the measurement is empty") }
        var tags: [String: String] = [:]
        while scanner.consume(Scanner.comma) {
            let key = try scanner.name(stoppingAt: [Scanner.equals, Scanner.comma, Scanner.space], what: "tag key")
            guard scanner.consume(Scanner.equals), !key.isEmpty else {
                throw DecodeError("tag '\(key)' has no key=value form")
            }
            let value = try scanner.name(stoppingAt: [Scanner.comma, Scanner.space], what: "tag value")
            guard !value.isEmpty else { throw DecodeError("tag '\(key)' has an empty value") }
            tags[key] = value
        }
        guard scanner.consume(Scanner.space) else { throw DecodeError("no field set after the measurement") }
        var fields: [(String, String)] = []
        repeat {
            let key = try scanner.name(stoppingAt: [Scanner.equals, Scanner.comma, Scanner.space], what: "field key")
            guard !key.isEmpty, scanner.consume(Scanner.equals) else {
                throw DecodeError("field '\(key)' has no key=value form")
            }
            fields.append((key, try scanner.fieldValue(for: key)))
        } while scanner.consume(Scanner.comma)
        if scanner.consume(Scanner.space) {
            let timestamp = scanner.takeRest()
            guard Int64(timestamp) != nil else { throw DecodeError("timestamp '\(timestamp)' is not an integer") }
        }
        guard scanner.atEnd else { throw DecodeError("unexpected text after the field set: '\(scanner.rest())'") }

        var messages: [DecodedMessage] = []
        for (key, value) in fields {
            let levels = topic.render { name in
                switch name {
                case "measurement": return measurement
                case "field": return key
                default: return tags[name]
                }
            }
            guard let levels else {
                throw DecodeError("the topic template \(topic) needs a tag the line does not have")
            }
            messages.append(DecodedMessage(levels: levels, payload: value))
        }
        return messages
    }

    /// A byte cursor over one line; the line protocol's separators are all ASCII.
    struct Scanner {
        static let comma = UInt8(ascii: ","), space = UInt8(ascii: " "), equals = UInt8(ascii: "=")
        static let backslash = UInt8(ascii: "\\"), quote = UInt8(ascii: "\"")
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { index == bytes.count }

        mutating func consume(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        func rest() -> String { String(decoding: bytes[index...], as: UTF8.self) }

        mutating func takeRest() -> String {
            defer { index = bytes.count }
            return rest()
        }

        /// A measurement, tag or field name: up to an unescaped stop byte; `\` escapes a stop byte.
        mutating func name(stoppingAt stops: [UInt8], what: String) throws(DecodeError) -> String {
            var out: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                if byte == Self.backslash, index + 1 < bytes.count,
                    [Self.comma, Self.space, Self.equals].contains(bytes[index + 1])
                {
                    out.append(bytes[index + 1])
                    index += 2
                    continue
                }
                if stops.contains(byte) { break }
                if byte == Self.quote && what == "measurement" && out.isEmpty {
                    throw DecodeError("a measurement may not start with '\"'")
                }
                out.append(byte)
                index += 1
            }
            return String(decoding: out, as: UTF8.self)
        }

        /// A field value: a quoted string, a boolean, or a number with an optional `i`/`u` suffix.
        mutating func fieldValue(for key: String) throws(DecodeError) -> String {
            if consume(Self.quote) {
                var out: [UInt8] = []
                while index < bytes.count {
                    let byte = bytes[index]
                    if byte == Self.backslash, index + 1 < bytes.count,
                        bytes[index + 1] == Self.quote || bytes[index + 1] == Self.backslash
                    {
                        out.append(bytes[index + 1])
                        index += 2
                        continue
                    }
                    index += 1
                    if byte == Self.quote { return String(decoding: out, as: UTF8.self) }
                    out.append(byte)
                }
                throw DecodeError("field '\(key)' has an unterminated string")
            }
            let start = index
            while index < bytes.count, bytes[index] != Self.comma, bytes[index] != Self.space { index += 1 }
            let token = String(decoding: bytes[start..<index], as: UTF8.self)
            switch token {
            case "t", "T", "true", "True", "TRUE": return "true"
            case "f", "F", "false", "False", "FALSE": return "false"
            default: break
            }
            if token.hasSuffix("i"), Int64(token.dropLast()) != nil { return String(token.dropLast()) }
            if token.hasSuffix("u"), UInt64(token.dropLast()) != nil { return String(token.dropLast()) }
            if let value = Double(token), value.isFinite, token.first != "+",
                !token.lowercased().contains("n")
            {  // refuses inf and nan, which the protocol does not allow
                return token
            }
            throw DecodeError("field '\(key)' has an invalid value '\(token)'")
        }
    }
}
