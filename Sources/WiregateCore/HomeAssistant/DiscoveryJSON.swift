import Foundation

/// A JSON document made in code (Home Assistant's discovery configs), encoded with sorted keys
/// so that the same config is always the same bytes: Home Assistant skips a config it already has.
public enum DiscoveryJSON: Sendable, Equatable, Encodable, ExpressibleByStringLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    case string(String)
    case bool(Bool)
    case int(Int)
    case array([DiscoveryJSON])
    case object([String: DiscoveryJSON])

    /// A string.
    public init(stringLiteral value: String) { self = .string(value) }
    /// A boolean.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// An array.
    public init(arrayLiteral elements: DiscoveryJSON...) { self = .array(elements) }
    /// An object; a key given twice keeps its last value.
    public init(dictionaryLiteral elements: (String, DiscoveryJSON)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { $1 }))
    }

    /// Encodes the value as JSON.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    /// The text of a string value; nil for any other.
    public var stringValue: String? { if case .string(let value) = self { value } else { nil } }

    /// The value of `key` in an object; nil for a missing key or another kind of value.
    public subscript(key: String) -> DiscoveryJSON? {
        if case .object(let value) = self { value[key] } else { nil }
    }

    /// The compact JSON text, keys sorted, slashes not escaped.
    public var text: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Strings, booleans, integers, arrays and objects of them always encode.
        return String(decoding: (try? encoder.encode(self)) ?? Data("null".utf8), as: UTF8.self)
    }
}
