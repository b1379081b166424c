import Foundation
import Yams

/// A mistake in the config, with the place it was found.
///
/// Printed as `FILE:LINE:COLUMN: KEY.PATH: message`, the way compilers report errors,
/// so editors can jump to it.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The config file as named to the parser (`parse(yaml:file:)`), first in the printed error.
    public var file: String
    /// The 1-based line of the mistake; nil when it has no place (an empty file, a default not written).
    public var line: Int?
    /// The 1-based column of the mistake; nil when it has no place.
    public var column: Int?
    /// The key path, such as `boards[0].protocol`; empty for the document itself.
    public var path: String
    /// What is wrong, in words for the user, such as `is required but missing`.
    public var message: String

    /// An error at the given place.
    /// - Parameters:
    ///   - file: the config file's name.
    ///   - line: the 1-based line, or nil.
    ///   - column: the 1-based column, or nil.
    ///   - path: the key path, empty for the document.
    ///   - message: what is wrong.
    public init(file: String, line: Int?, column: Int?, path: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    /// `FILE:LINE:COLUMN: KEY.PATH: message`, leaving out what is unknown.
    public var description: String {
        var place = file
        if let line { place += ":\(line)" }
        if let column { place += ":\(column)" }
        return path.isEmpty ? "\(place): \(message)" : "\(place): \(path): \(message)"
    }
}

/// A YAML node together with the key path and position it came from.
///
/// Every accessor checks the node's type and throws a `ConfigError` naming the path
/// and the line, which is what makes every config mistake point at its place.
public struct ConfigNode: @unchecked Sendable {
    // Yams.Node is a value tree; `@unchecked` only because it holds a weak anchor reference we never use.
    let node: Yams.Node
    /// The key path to this node, such as `boards[0].match`; empty for the document.
    public let path: String
    let file: String

    init(node: Yams.Node, path: String, file: String) {
        self.node = node
        self.path = path
        self.file = file
    }

    /// Builds an error located at this node.
    public func error(_ message: String) -> ConfigError {
        let mark = node.mark
        return ConfigError(file: file, line: mark?.line, column: mark?.column, path: path, message: message)
    }

    var kind: String {
        switch node {
        case .scalar: return "a scalar"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// Whether the node is an explicit null (`~`, `null` or nothing).
    public var isNull: Bool { node.null != nil && node.scalar?.style == .plain }

    /// The node as a mapping, to be read key by key.
    /// - Throws: `ConfigError` when the node is a scalar, a list or an alias.
    public func mapping() throws(ConfigError) -> ConfigMapping {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping of keys, found \(kind)") }
        return ConfigMapping(mapping: mapping, owner: self)
    }

    /// The items of a list, each with its path (`boards[2]`).
    /// - Throws: `ConfigError` when the node is not a list.
    public func sequence() throws(ConfigError) -> [ConfigNode] {
        guard case .sequence(let sequence) = node else { throw error("expected a list, found \(kind)") }
        return sequence.enumerated().map { ConfigNode(node: $1, path: "\(path)[\($0)]", file: file) }
    }

    /// The scalar's text, whatever YAML would read it as (`2341` and `true` come back as written).
    /// - Throws: `ConfigError` when the node is a mapping, a list or an alias.
    public func string() throws(ConfigError) -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a string, found \(kind)") }
        return scalar.string
    }

    /// The scalar's text, which must hold more than spaces.
    /// - Throws: `ConfigError` when the node is not a scalar, or is empty or blank.
    public func nonEmptyString() throws(ConfigError) -> String {
        let value = try string()
        guard !value.trimmingCharacters(in: .whitespaces).isEmpty else { throw error("must not be empty") }
        return value
    }

    /// A whole number, written unquoted.
    /// - Parameter range: the values accepted.
    /// - Throws: `ConfigError` when the node is not a plain whole number, or is outside `range`.
    public func int(in range: ClosedRange<Int>) throws(ConfigError) -> Int {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Int(scalar.string) else {
            throw error("expected a whole number, found \(describeValue)")
        }
        guard range.contains(value) else {
            throw error("\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// A boolean written unquoted, such as `true` or `false`.
    /// - Throws: `ConfigError` for anything else, a quoted `"true"` included.
    public func bool() throws(ConfigError) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = node.bool else {
            throw error("expected true or false, found \(describeValue)")
        }
        return value
    }

    /// A size in bytes: `65536`, `512KiB`, `256MiB`, `1GiB` (KB/MB/GB are read as the same binary units).
    public func byteSize(in range: ClosedRange<Int64>) throws(ConfigError) -> Int64 {
        guard case .scalar(let scalar) = node, let value = Self.parseByteSize(scalar.string) else {
            throw error("expected a size such as 65536, 512KiB, 256MiB or 1GiB, found \(describeValue)")
        }
        guard range.contains(value) else {
            throw error("\(scalar.string) is out of range \(range.lowerBound)...\(range.upperBound) bytes")
        }
        return value
    }

    static func parseByteSize(_ text: String) -> Int64? {
        let text = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Int64)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30),
            ("B", 1)
        ]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), value >= 0,
                value.isFinite
            else { return nil }
            return Int64(value * Double(scale))
        }
        return Int64(text)
    }

    /// A duration: `500ms`, `2s`, `5m`, `1h`, `30d`, or a plain number of seconds.
    public func duration(in range: ClosedRange<Duration>? = nil) throws(ConfigError) -> Duration {
        guard case .scalar(let scalar) = node, let value = Self.parseDuration(scalar.string) else {
            throw error("expected a duration such as 500ms, 2s, 5m, 1h or 30d, found \(describeValue)")
        }
        if let range, !range.contains(value) {
            throw error("\(scalar.string) is out of range \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// A list of scalars, as text.
    /// - Throws: `ConfigError` when the node is not a list, or an item is not a scalar.
    public func stringList() throws(ConfigError) -> [String] {
        var result: [String] = []
        for item in try sequence() { result.append(try item.string()) }
        return result
    }

    /// One of a fixed set of words, with the choices named in the error.
    public func oneOf(_ choices: [String]) throws(ConfigError) -> String {
        let value = try string()
        guard choices.contains(value) else {
            throw error("'\(value)' is not one of \(choices.joined(separator: ", "))")
        }
        return value
    }

    var describeValue: String {
        if case .scalar(let scalar) = node { return "'\(scalar.string)'" }
        return kind
    }

    static func parseDuration(_ text: String) -> Duration? {
        let text = text.trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            // "ms" must not be read as "m" + "s": "5ms" ends with "s" too, so the order above matters.
            guard let value = Double(number), value >= 0, value.isFinite else { return nil }
            return .milliseconds(Int64((value * scale * 1000).rounded()))
        }
        guard let seconds = Double(text), seconds >= 0, seconds.isFinite else { return nil }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }
}

/// A YAML mapping with its place, read key by key.
public struct ConfigMapping: @unchecked Sendable {
    let mapping: Yams.Node.Mapping
    /// The node that is this mapping: its path prefixes the keys', its place locates missing keys.
    public let owner: ConfigNode

    /// The value of `key`, or nil when absent or null.
    public func optional(_ key: String) -> ConfigNode? {
        for (keyNode, value) in mapping where keyNode.string == key {
            let child = ConfigNode(node: value, path: childPath(key), file: owner.file)
            return child.isNull ? nil : child
        }
        return nil
    }

    /// The value of `key`; an error naming the key when it is missing.
    public func required(_ key: String) throws(ConfigError) -> ConfigNode {
        guard let value = optional(key) else {
            throw ConfigError(
                file: owner.file, line: owner.node.mark?.line, column: owner.node.mark?.column,
                path: childPath(key), message: "is required but missing")
        }
        return value
    }

    /// Every entry, in the order written, keys as strings.
    public var entries: [(key: String, value: ConfigNode)] {
        mapping.map {
            (
                key: $0.key.string ?? "",
                value: ConfigNode(node: $0.value, path: childPath($0.key.string ?? "?"), file: owner.file)
            )
        }
    }

    /// Refuses any key not in `known`, naming it and the closest known key.
    public func rejectUnknownKeys(_ known: [String], hints: [String: String] = [:]) throws(ConfigError) {
        for (keyNode, _) in mapping {
            let key = keyNode.string ?? "?"
            guard !known.contains(key) else { continue }
            let place = ConfigNode(node: keyNode, path: childPath(key), file: owner.file)
            if let hint = hints[key] { throw place.error(hint) }
            var message = "unknown key"
            if let suggestion = known.min(by: { $0.editDistance(to: key) < $1.editDistance(to: key) }),
                suggestion.editDistance(to: key) <= max(2, key.count / 3)
            {
                message += " (did you mean '\(suggestion)'?)"
            } else {
                message += " (known keys: \(known.joined(separator: ", ")))"
            }
            throw place.error(message)
        }
    }

    func childPath(_ key: String) -> String {
        owner.path.isEmpty ? key : "\(owner.path).\(key)"
    }
}

extension String {
    /// Levenshtein distance, for "did you mean" hints on short config keys.
    func editDistance(to other: String) -> Int {
        let a = Array(self), b = Array(other)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = Swift.min(
                    previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
