import Testing

@testable import WiregateCore

@Suite struct LineFramerTests {
    func frame(_ chunks: [[UInt8]], max: Int = 1024, resync: Bool = false) -> [LineFramer.Output] {
        var framer = LineFramer(maxLineLength: max)
        if resync { framer.resynchronise() }
        var out: [LineFramer.Output] = []
        for chunk in chunks { framer.feed(chunk) { out.append($0) } }
        return out
    }

    @Test func acceptsLFAndCRLF() {
        #expect(frame([Array("a=1\nb=2\r\n".utf8)]) == [.line("a=1"), .line("b=2")])
    }

    @Test func sameLinesWhateverTheSplit() {
        let bytes = Array("door=open;battery=87\r\ntemp=21.5\n".utf8)
        let whole = frame([bytes])
        for cut in 1..<bytes.count {
            #expect(frame([Array(bytes[..<cut]), Array(bytes[cut...])]) == whole, "cut at \(cut)")
        }
        #expect(frame(bytes.map { [$0] }) == whole)
    }

    @Test func holdsAnUnfinishedLine() {
        #expect(frame([Array("no newline yet".utf8)]).isEmpty)
    }

    @Test func overlongLineIsCutAndTheRestDiscarded() {
        let long = [UInt8](repeating: UInt8(ascii: "x"), count: 40)
        #expect(frame([long, Array("\nok=1\n".utf8)], max: 16) == [.rejected(.overlong), .line("ok=1")])
        // Exactly the limit passes, also with CRLF.
        let exact = [UInt8](repeating: UInt8(ascii: "y"), count: 16)
        #expect(frame([exact + Array("\r\n".utf8)], max: 16) == [.line(String(repeating: "y", count: 16))])
    }

    @Test func rejectsNULControlAndInvalidUTF8() {
        #expect(frame([[0x61, 0x00, 0x62, 0x0A]]) == [.rejected(.nul)])
        #expect(frame([[0x61, 0x1B, 0x5B, 0x0A]]) == [.rejected(.control)])
        #expect(frame([[0x61, 0xC3, 0x28, 0x0A]]) == [.rejected(.invalidUTF8)])
        #expect(frame([[0xF0, 0x9F, 0x98, 0x0A]]) == [.rejected(.invalidUTF8)])  // truncated 4-byte sequence
        #expect(frame([Array("temp=21°C\tok\n".utf8)]) == [.line("temp=21°C\tok")])
    }

    @Test func badLineDoesNotHarmItsNeighbours() {
        let bytes = Array("a=1\n".utf8) + [0xFF, 0xFE, 0x00, 0x0A] + Array("b=2\n".utf8)
        #expect(frame([bytes]) == [.line("a=1"), .rejected(.nul), .line("b=2")])
        let noise = Array("a=1\n".utf8) + [0xFF, 0xFE, 0x41, 0x0A] + Array("b=2\n".utf8)
        #expect(frame([noise]) == [.line("a=1"), .rejected(.invalidUTF8), .line("b=2")])
    }

    @Test func resynchroniseDropsThePartialFirstLine() {
        #expect(frame([Array("tail of a line\nfull=1\n".utf8)], resync: true) == [.rejected(.partial), .line("full=1")])
        // Bootloader noise before the first newline goes with it.
        #expect(
            frame([[0x00, 0xF0, 0x30, 0x0A] + Array("x=1\n".utf8)], resync: true) == [.rejected(.partial), .line("x=1")]
        )
    }
}
