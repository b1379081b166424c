/// `kv`: `door=open;battery=87`, one message per key.
///
/// Options: `pair_separator` (default `;`) and `value_separator` (default `=`).
/// Empty pairs (a trailing `;`) are skipped; a pair without a separator or with an
/// empty key makes the whole line malformed.
public struct KeyValueDecoder: LineDecoder {
    /// `kv`.
    public static let protocolName = "kv"

    /// Splits a line into pairs (`pair_separator`, default `;`).
    public let pairSeparator: Character
    /// Splits a pair into key and value at its first occurrence (`value_separator`, default `=`).
    public let valueSeparator: Character

    /// The pair separator, and `;` which most firmware splits commands on too.
    public var commandSeparators: Set<Unicode.Scalar> { Set(pairSeparator.unicodeScalars).union([";"]) }

    /// A decoder with the given separators, which should differ (not checked here).
    /// - Parameters:
    ///   - pairSeparator: between pairs; `;` by default.
    ///   - valueSeparator: between a key and its value; `=` by default.
    public init(pairSeparator: Character = ";", valueSeparator: Character = "=") {
        self.pairSeparator = pairSeparator
        self.valueSeparator = valueSeparator
    }

    /// Reads `pair_separator` and `value_separator`; throws `ConfigError` for another key, a separator
    /// that is not one punctuation character, or two equal separators.
    public init(options: ConfigMapping?) throws(ConfigError) {
        self.init()
        guard let options else { return }
        try options.rejectUnknownKeys(["pair_separator", "value_separator"])
        var pair: Character = ";", value: Character = "="
        if let node = options.optional("pair_separator") { pair = try Self.separator(node) }
        if let node = options.optional("value_separator") { value = try Self.separator(node) }
        guard pair != value else {
            throw options.owner.error("pair_separator and value_separator must differ")
        }
        self.init(pairSeparator: pair, valueSeparator: value)
    }

    private static func separator(_ node: ConfigNode) throws(ConfigError) -> Character {
        let text = try node.string()
        guard text.count == 1, let character = text.first, !character.isLetter, !character.isNumber,
            character != "\n", character != "\r"
        else {
            throw node.error("expected a single punctuation character, found '\(text)'")
        }
        return character
    }

    /// One message per pair, the key (trimmed) as its one level; throws `DecodeError` for a pair
    /// without a value separator or with an empty key, or a line with no pair.
    public func decode(_ line: String) throws(DecodeError) -> [DecodedMessage] {
        var messages: [DecodedMessage] = []
        for pair in line.split(separator: pairSeparator, omittingEmptySubsequences: true) {
            if pair.allSatisfy(\.isWhitespace) { continue }
            guard let split = pair.firstIndex(of: valueSeparator) else {
                throw DecodeError("pair '\(pair)' has no '\(valueSeparator)'")
            }
            let key = pair[..<split].trimmingWhitespace()
            let value = pair[pair.index(after: split)...].trimmingWhitespace()
            guard !key.isEmpty else { throw DecodeError("pair '\(pair)' has an empty key") }
            messages.append(DecodedMessage(levels: [String(key)], payload: String(value)))
        }
        guard !messages.isEmpty else { throw DecodeError("no key\(valueSeparator)value pair") }
        return messages
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> SubSequence {
        guard let first = firstIndex(where: { !$0.isWhitespace }),
            let last = lastIndex(where: { !$0.isWhitespace })
        else { return self[endIndex...] }
        return self[first...last]
    }
}
