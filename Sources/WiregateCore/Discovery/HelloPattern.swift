/// The hello line a board's firmware prints after reset to say who it is, e.g.
/// `#hello id=<name>`: literal text around one `<name>`.
public struct HelloPattern: Sendable, Hashable, CustomStringConvertible {
    /// The text before `<name>`, such as `#hello id=`.
    public let prefix: String
    /// The text after `<name>`, often empty: a hello line must end with it.
    public let suffix: String

    /// - Returns: nil unless `template` holds `<name>` exactly once.
    public init?(_ template: String) {
        let parts = template.components(separatedBy: "<name>")
        guard parts.count == 2 else { return nil }
        prefix = parts[0]
        suffix = parts[1]
    }

    /// The name in `line`, trimmed, when the line is a hello line and the name a usable topic level.
    public func name(in line: String) -> String? {
        guard line.hasPrefix(prefix), line.hasSuffix(suffix), line.count >= prefix.count + suffix.count else {
            return nil
        }
        let name = line.dropFirst(prefix.count).dropLast(suffix.count).trimmingWhitespace()
        guard !name.isEmpty, Topic.problem(inConfiguredLevel: String(name)) == nil else { return nil }
        return String(name)
    }

    /// The pattern as written in the config, `<name>` included.
    public var description: String { prefix + "<name>" + suffix }
}
