import Foundation
import Testing

@testable import WiregateCore

/// `udev/99-wiregate.rules`: well-formed, only keys udev knows, the same allow-list as the daemon.
@Suite struct UdevRulesTests {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../udev/99-wiregate.rules").standardized.path

    /// One `KEY{attr}OP"value"` of a rule.
    struct Pair: Equatable {
        var key: String
        var attribute: String?
        var op: String
        var value: String
    }

    static func rules() throws -> [[Pair]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let pair = /\s*([A-Z_]+)(?:\{([^}]*)\})?(==|!=|\+=|-=|:=|=)"([^"]*)"\s*(,|$)/
        return try text.split(separator: "\n").compactMap { line -> [Pair]? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#") else { return nil }
            var rest = Substring(trimmed)
            var pairs: [Pair] = []
            while !rest.isEmpty {
                guard let match = try pair.prefixMatch(in: rest) else {
                    Issue.record("cannot parse \(rest) in: \(trimmed)")
                    return pairs
                }
                pairs.append(
                    Pair(
                        key: String(match.1), attribute: match.2.map(String.init), op: String(match.3),
                        value: String(match.4)))
                rest = rest[match.range.upperBound...]
            }
            return pairs
        }
    }

    /// udev(7): the match and assignment keys used here, and which operators each takes.
    static let matchKeys: Set = [
        "ACTION", "SUBSYSTEM", "SUBSYSTEMS", "KERNEL", "KERNELS", "DRIVERS", "ATTRS", "ATTR", "ENV"
    ]
    static let assignKeys: Set = ["ENV", "GROUP", "MODE", "OWNER", "SYMLINK", "IMPORT", "GOTO", "LABEL", "TAG"]

    @Test func everyRuleUsesOnlyKnownKeysAndOperators() throws {
        let rules = try Self.rules()
        #expect(rules.count >= 10)
        for rule in rules {
            for pair in rule {
                if pair.op == "==" || pair.op == "!=" {
                    #expect(Self.matchKeys.contains(pair.key), "\(pair.key) is not a match key")
                } else {
                    #expect(Self.assignKeys.contains(pair.key), "\(pair.key) is not an assignment key")
                }
                if ["ATTRS", "ATTR", "ENV", "IMPORT"].contains(pair.key) {
                    #expect(pair.attribute != nil, "\(pair.key) needs {…}")
                }
                if pair.key == "IMPORT" {
                    #expect(pair.attribute == "builtin" && ["usb_id", "path_id"].contains(pair.value))
                }
                if pair.key == "MODE" { #expect(pair.value == "0660") }
                if pair.key == "GROUP" { #expect(pair.value == "dialout") }
                if pair.key == "SYMLINK" { #expect(pair.op == "+=" && pair.value.hasPrefix("wiregate/")) }
            }
        }
        // Every GOTO has its LABEL.
        let labels = Set(rules.flatMap { $0 }.filter { $0.key == "LABEL" }.map(\.value))
        for goto in rules.flatMap({ $0 }).filter({ $0.key == "GOTO" }) { #expect(labels.contains(goto.value)) }
    }

    @Test func allowListIsTheDaemonsDefault() throws {
        let pairs = try Self.rules().compactMap { rule -> String? in
            guard rule.contains(where: { $0.key == "ENV" && $0.attribute == "WIREGATE" && $0.op == "=" }),
                let vendor = rule.first(where: { $0.attribute == "idVendor" })?.value
            else { return nil }
            return "\(vendor):\(rule.first(where: { $0.attribute == "idProduct" })?.value ?? "*")"
        }
        #expect(try USBAllowList(pairs) == USBAllowList.defaults)
    }
}
