/// Topic levels and templates: the one place where text from a board becomes part
/// of an MQTT topic.
public enum Topic {
    /// The longest topic level made from board data, in UTF-8 bytes. Longer ones are cut.
    public static let maxLevelLength = 128

    /// The most levels a board's data may make below the board's own topic. A line that asks for
    /// more is malformed: nothing of it is published (the broker's own limit is far above this,
    /// and a deep topic is a hostile or broken board, not a sensor).
    public static let maxDepth = 16

    /// Whether MQTT 5 (1.5.4) forbids `scalar` in a topic or says it SHOULD NOT appear: NUL, the C0
    /// and C1 controls, DEL, and the Unicode non-characters (U+FDD0–U+FDEF, U+xFFFE and U+xFFFF in
    /// every plane). libmosquitto refuses all of them (`MOSQ_ERR_MALFORMED_UTF8`), so a topic
    /// holding one could never be published. Surrogates cannot occur in a Swift string.
    public static func isForbidden(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        return value < 0x20 || (0x7F...0x9F).contains(value) || (0xFDD0...0xFDEF).contains(value)
            || value & 0xFFFE == 0xFFFE
    }

    /// Makes one topic level out of text a board sent, or returns nil when nothing usable is left.
    ///
    /// `/` (a level separator), `+` and `#` (wildcards), every character MQTT forbids or
    /// discourages (`isForbidden`: controls, non-characters) and a leading `$` (reserved for the
    /// broker's own topics) become `_`; the levels `.` and `..` become `_` too, so that no tool
    /// that treats topics as paths walks out of the board's subtree. Surrounding whitespace is trimmed.
    public static func sanitisedLevel<S: StringProtocol>(_ raw: S) -> String? {
        let trimmed = raw.trimmingWhitespace()
        guard !trimmed.isEmpty else { return nil }
        var level = ""
        level.reserveCapacity(trimmed.utf8.count)
        for scalar in trimmed.unicodeScalars {
            switch scalar {
            case "/", "+", "#": level.append("_")
            case _ where isForbidden(scalar): level.append("_")
            default: level.unicodeScalars.append(scalar)
            }
        }
        // By scalar, not Character: "$" followed by a combining mark is one Character, not "$".
        if level.unicodeScalars.first == "$" { level = "_" + String(level.unicodeScalars.dropFirst()) }
        if level == "." || level == ".." { level = "_" }
        if level.utf8.count > maxLevelLength {
            var cut = ""
            for character in level {
                if cut.utf8.count + character.utf8.count > maxLevelLength { break }
                cut.append(character)
            }
            level = cut
        }
        return level
    }

    /// Checks a topic (or topic prefix) written in the config: no empty level, no
    /// wildcard, no `$` at the start, no NUL.
    /// - Returns: nil when it is valid, else the reason.
    ///
    /// Works on bytes: a `+` or `/` followed by a combining mark is one Character, but still a
    /// wildcard or a separator to the broker.
    public static func problem(inConfiguredTopic topic: String) -> String? {
        let bytes = topic.utf8
        if bytes.isEmpty { return "is empty" }
        if bytes.first == UInt8(ascii: "$") { return "starts with '$', which is reserved for the broker" }
        if bytes.contains(UInt8(ascii: "+")) || bytes.contains(UInt8(ascii: "#")) {
            return "contains a wildcard ('+' or '#')"
        }
        if topic.unicodeScalars.contains(where: isForbidden) {
            return "contains a control character or a Unicode non-character, which MQTT forbids in topics"
        }
        if bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).contains(where: \.isEmpty) {
            return "has an empty level (a leading, trailing or doubled '/')"
        }
        return nil
    }

    /// Checks one configured name that becomes one topic level (gateway id, board name).
    /// - Returns: nil when it is valid, else the reason.
    public static func problem(inConfiguredLevel name: String) -> String? {
        if let problem = problem(inConfiguredTopic: name) { return problem }
        if name.utf8.contains(UInt8(ascii: "/")) { return "contains '/', but it must be a single topic level" }
        return nil
    }
}

/// A topic template written in the config, such as `{sensor}/{id}` or `room-{room}/temperature`.
///
/// Placeholders name fields of the decoded line; each value is sanitised as it is
/// put in, so a field holding `#` or `a/b` still gives one ordinary level.
public struct TopicTemplate: Sendable, Equatable, CustomStringConvertible {
    enum Part: Sendable, Equatable {
        case literal(String)
        case field(String)
    }

    /// Levels of the template, each a list of parts.
    let levels: [[Part]]
    /// The template as written in the config.
    public let description: String

    /// The field names the template uses, in order of appearance.
    public var fields: [String] {
        levels.flatMap { $0 }.compactMap { if case .field(let name) = $0 { name } else { nil } }
    }

    /// Parses a template.
    /// - Throws: `TemplateError` with the reason when braces do not balance, a
    ///   placeholder is empty, a level is empty or a literal holds a wildcard.
    public init(_ text: String) throws(TemplateError) {
        description = text
        if let problem = Topic.problem(inConfiguredTopic: text.replacingPlaceholders()) {
            throw TemplateError(reason: "the topic \(problem)")
        }
        var levels: [[Part]] = []
        for levelText in text.split(separator: "/", omittingEmptySubsequences: false) {
            var parts: [Part] = []
            var rest = Substring(levelText)
            while !rest.isEmpty {
                if let open = rest.firstIndex(of: "{") {
                    if open > rest.startIndex {
                        let literal = rest[..<open]
                        if literal.contains("}") { throw TemplateError(reason: "'}' without a matching '{'") }
                        parts.append(.literal(String(literal)))
                    }
                    guard let close = rest[open...].firstIndex(of: "}") else {
                        throw TemplateError(reason: "'{' without a matching '}'")
                    }
                    let name = rest[rest.index(after: open)..<close]
                    guard !name.isEmpty else { throw TemplateError(reason: "an empty placeholder '{}'") }
                    guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-" }),
                        !name.contains("{")
                    else {
                        throw TemplateError(
                            reason: "the placeholder '{\(name)}' may hold only letters, digits, '_', '-' and '.'")
                    }
                    parts.append(.field(String(name)))
                    rest = rest[rest.index(after: close)...]
                } else {
                    if rest.contains("}") { throw TemplateError(reason: "'}' without a matching '{'") }
                    parts.append(.literal(String(rest)))
                    rest = rest[rest.endIndex...]
                }
            }
            levels.append(parts)
        }
        self.levels = levels
    }

    /// Fills the template in.
    /// - Parameter value: the text of a field, or nil when the line lacks it.
    /// - Returns: the topic levels, sanitised; nil when a field is missing or a level comes out empty.
    public func render(_ value: (String) -> String?) -> [String]? {
        var result: [String] = []
        result.reserveCapacity(levels.count)
        for parts in levels {
            var level = ""
            for part in parts {
                switch part {
                case .literal(let text): level += text
                case .field(let name):
                    guard let raw = value(name) else { return nil }
                    level += raw
                }
            }
            guard let clean = Topic.sanitisedLevel(level) else { return nil }
            result.append(clean)
        }
        return result
    }
}

/// Why a topic template was refused.
public struct TemplateError: Error, Sendable, Equatable {
    /// What is wrong, in words fit for a config error (`'{' without a matching '}'`).
    public var reason: String
}

extension String {
    /// The template with every `{…}` replaced by a plain letter, to check the rest as a topic.
    fileprivate func replacingPlaceholders() -> String {
        var out = ""
        var inside = false
        for character in self {
            if character == "{" { inside = true; out.append("x"); continue }
            if character == "}" && inside { inside = false; continue }
            if !inside { out.append(character) }
        }
        return out
    }
}
