import Foundation

/// `json`: one JSON object per line, as ArduinoJson's `serializeJson` prints it.
///
/// Options:
/// - `topic`: a template over the object's fields, such as `{sensor}/{id}`
///   (`a.b` reaches into nested objects). With it, the line gives one message.
/// - `value`: with `topic`, the field whose value is the payload; without it the
///   payload is the whole line.
///
/// Without `topic`, every scalar field gives one message, named by its key (nested
/// objects add levels: `{"env":{"t":21}}` gives `env/t`).
public struct JSONLineDecoder: LineDecoder {
    /// `json`.
    public static let protocolName = "json"

    /// The `topic` template; nil publishes one message per scalar field, named by its key path.
    public let topic: TopicTemplate?
    /// The `value` field (a dotted path) whose value is the payload; nil sends the whole line.
    public let valueField: String?

    /// A JSON board reads commands as JSON too: a pattern's value must not close a string, an
    /// object or an array, or add a member (`{"led":*}` with `1,"siren":"off"`).
    public var commandSeparators: Set<Unicode.Scalar> { [";", ",", "\"", "{", "}", "[", "]", ":", "\\"] }

    /// A decoder with the given template and value field.
    /// - Parameters:
    ///   - topic: the topic template over the object's fields; nil for one message per field.
    ///   - valueField: the field that gives the payload; meant to be used only with `topic`.
    public init(topic: TopicTemplate? = nil, valueField: String? = nil) {
        self.topic = topic
        self.valueField = valueField
    }

    /// Reads `topic` and `value`; throws `ConfigError` for another key, a bad template, or a `value`
    /// without a `topic`.
    public init(options: ConfigMapping?) throws(ConfigError) {
        self.init()
        guard let options else { return }
        try options.rejectUnknownKeys(["topic", "value"])
        var template: TopicTemplate?
        if let node = options.optional("topic") {
            do { template = try TopicTemplate(try node.string()) } catch let error as TemplateError {
                throw node.error("bad topic template: \(error.reason)")
            } catch let error as ConfigError { throw error } catch { throw node.error("\(error)") }
        }
        var value: String?
        if let node = options.optional("value") {
            guard template != nil else { throw node.error("'value' needs a 'topic' template beside it") }
            value = try node.nonEmptyString()
        }
        self.init(topic: template, valueField: value)
    }

    /// The line's messages; throws `DecodeError` when it is not a JSON object, has no field, or lacks
    /// a field the template or `value` needs.
    public func decode(_ line: String) throws(DecodeError) -> [DecodedMessage] {
        let object: [String: JSONValue]
        do {
            object = try JSONDecoder().decode([String: JSONValue].self, from: Data(line.utf8))
        } catch {
            throw DecodeError("not a JSON object")
        }
        guard let topic else {
            var messages: [DecodedMessage] = []
            Self.flatten(object, prefix: [], into: &messages)
            guard !messages.isEmpty else { throw DecodeError("the object has no fields") }
            return messages
        }
        guard let levels = topic.render({ Self.lookup($0, in: object)?.text }) else {
            let missing = topic.fields.filter { Self.lookup($0, in: object)?.text == nil }
            throw DecodeError("the topic template \(topic) needs field(s) \(missing.joined(separator: ", "))")
        }
        if let valueField {
            guard let value = Self.lookup(valueField, in: object) else {
                throw DecodeError("the value field '\(valueField)' is missing")
            }
            return [DecodedMessage(levels: levels, payload: value.text ?? value.json)]
        }
        return [DecodedMessage(levels: levels, payload: line)]
    }

    static func lookup(_ path: String, in object: [String: JSONValue]) -> JSONValue? {
        var current = JSONValue.object(object)
        for key in path.split(separator: ".") {
            guard case .object(let fields) = current, let next = fields[String(key)] else { return nil }
            current = next
        }
        return current
    }

    static func flatten(_ object: [String: JSONValue], prefix: [String], into messages: inout [DecodedMessage]) {
        // Sorted so that the same line always gives messages in the same order.
        for key in object.keys.sorted() {
            let value = object[key]!
            if case .object(let nested) = value {
                flatten(nested, prefix: prefix + [key], into: &messages)
            } else {
                messages.append(DecodedMessage(levels: prefix + [key], payload: value.text ?? value.json))
            }
        }
    }
}

/// A JSON value that keeps booleans, integers and decimals apart.
enum JSONValue: Decodable, Sendable, Equatable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// The value as a payload or a topic level; nil for arrays and objects.
    var text: String? {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .integer(let value): return String(value)
        case .number(let value): return value.description
        case .string(let value): return value
        case .array, .object: return nil
        }
    }

    /// Compact JSON text, for arrays and objects used as payloads.
    var json: String {
        switch self {
        case .string(let value):
            let data = (try? JSONEncoder().encode(value)) ?? Data()
            return String(decoding: data, as: UTF8.self)
        case .array(let items): return "[" + items.map(\.json).joined(separator: ",") + "]"
        case .object(let fields):
            return "{"
                + fields.keys.sorted().map { JSONValue.string($0).json + ":" + fields[$0]!.json }.joined(separator: ",")
                + "}"
        default: return text ?? "null"
        }
    }
}
