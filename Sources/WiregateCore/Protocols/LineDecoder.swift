/// One message a decoder found in a line: topic levels below the board, and a payload.
///
/// Levels are as the board sent them; `EventBuilder` sanitises them before they
/// become part of a topic.
public struct DecodedMessage: Sendable, Equatable {
    /// Topic levels below the board, as the board sent them; `EventBuilder` refuses an empty list.
    public var levels: [String]
    /// The message's value, as text.
    public var payload: String

    /// A message on `levels` (below the board) carrying `payload`.
    /// - Parameters:
    ///   - levels: the topic levels as the board sent them.
    ///   - payload: the value.
    public init(levels: [String], payload: String) {
        self.levels = levels
        self.payload = payload
    }
}

/// Why a line could not be decoded. The line is dropped whole: nothing half-parsed is published.
public struct DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong with the line, in words for the log and the counters.
    public var reason: String
    /// An error with its reason.
    /// - Parameter reason: what is wrong with the line.
    public init(_ reason: String) { self.reason = reason }
    /// The reason.
    public var description: String { reason }
}

/// A board's line protocol: text lines in, messages out, and commands back.
///
/// Each protocol is one file with one type conforming to this, registered once in
/// `LineProtocols.all`. The type reads its own `options:` from the board's config,
/// so a new protocol touches nothing else.
public protocol LineDecoder: Sendable {
    /// The word used for `protocol:` in the config.
    static var protocolName: String { get }

    /// Builds the decoder from the board's `options:` mapping (nil when there is none).
    /// - Throws: `ConfigError` for an unknown option or a bad value, located in the config.
    init(options: ConfigMapping?) throws(ConfigError)

    /// Decodes one clean line (no line ending, valid UTF-8, no control characters).
    /// - Returns: the messages in the line, in order; may be empty.
    /// - Throws: `DecodeError` when the line is malformed.
    func decode(_ line: String) throws(DecodeError) -> [DecodedMessage]

    /// Topic filters below the board, besides `set`, on which this protocol takes commands.
    var commandFilters: [String] { get }

    /// The line to write to the board for a command received on `levels` (below the
    /// board, `set` excluded), or nil when the topic is not one of this protocol's.
    func commandLine(levels: [Substring], payload: String) -> String?

    /// The characters that split the board's own lines into parts: a `*` of a command pattern
    /// never matches them, so `LED=*` cannot carry `LED=1;SIREN=OFF` to firmware that splits on `;`.
    var commandSeparators: Set<Unicode.Scalar> { get }
}

extension LineDecoder {
    /// None by default: the protocol takes commands on `set` only.
    public var commandFilters: [String] { [] }
    /// `;` by default, which most firmware splits its lines on.
    public var commandSeparators: Set<Unicode.Scalar> { [";"] }
    /// Nil by default: no topic other than `set` is this protocol's.
    public func commandLine(levels: [Substring], payload: String) -> String? { nil }
}

/// The registry of line protocols. Adding a protocol is one file and one line here.
public enum LineProtocols {
    /// Every protocol the gateway knows, in the order `names` lists them.
    public static let all: [any LineDecoder.Type] = [
        KeyValueDecoder.self,
        JSONLineDecoder.self,
        MySensorsDecoder.self,
        InfluxLineDecoder.self,
        RawLineDecoder.self
    ]

    /// The words accepted for `protocol:`, for the config error that lists them.
    public static var names: [String] { all.map { $0.protocolName } }

    /// The protocol a board's `protocol:` names.
    /// - Parameter name: the word from the config, such as `kv`; case matters.
    /// - Returns: the decoder type, or nil when no protocol has that name.
    public static func decoderType(named name: String) -> (any LineDecoder.Type)? {
        all.first { $0.protocolName == name }
    }
}
