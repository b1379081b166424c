import WiregateCore

/// Lines a broken or hostile board sends: each must cost at most itself (a log line and a
/// counter), never a neighbour, never a topic outside the board's subtree.
enum HostileLines {
    /// One hostile line's bytes, newline included (so it never runs into the next line).
    static func draw(using random: inout SeededGenerator, maxLineLength: Int) -> [UInt8] {
        let scalars = { (codes: [UInt32]) in codes.map { String(Character(Unicode.Scalar($0)!)) } }
        let c1 = scalars([0x80, 0x85, 0x9B, 0x9F])
        let nonCharacters = scalars([0xFDD0, 0xFDEF, 0xFFFE, 0xFFFF, 0x1FFFF, 0x10FFFE])
        let wildcards = ["$SYS", "+", "#", "/", "//", "$", "a/+/#"]
        let body: [UInt8]
        switch Int.random(in: 0..<9, using: &random) {
        case 0: body = Array("door\(c1.randomElement(using: &random)!)=open".utf8)
        case 1:
            body = Array("k\(nonCharacters.randomElement(using: &random)!)y=\(c1.randomElement(using: &random)!)".utf8)
        case 2:
            body = [UInt8](
                repeating: UInt8(ascii: "x"), count: maxLineLength + Int.random(in: 1...5000, using: &random))
        case 3: body = Array("door=open".utf8) + [0] + Array("siren=on".utf8)
        case 4: body = [0xC3, 0x28, UInt8(ascii: "="), 0xFF, 0xFE, 0xED, 0xA0, 0x80]
        case 5:
            body = Array("\(wildcards.randomElement(using: &random)!)=\(wildcards.randomElement(using: &random)!)".utf8)
        case 6:
            let depth = Int.random(in: 50...400, using: &random)
            body = Array((String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth)).utf8)
        case 7: body = Array((0..<40).map { "l\($0)" }.joined(separator: "/").appending("=deep").utf8)
        default: body = Array("door=\(c1.randomElement(using: &random)!);temperature=\u{0}".utf8)
        }
        return body + [UInt8(ascii: "\n")]
    }
}
