import Testing
@testable import DariBridge

/// JSONWriter.string copies runs that need no escape whole: every escape
/// boundary (start, middle, end, adjacent escapes) must still be right.
@Suite struct JSONWriterTests {
    func written(_ s: String) -> String {
        var w = JSONWriter(capacity: 0)
        w.string(s)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    @Test func escapesQuotesBackslashesAndControlCharacters() {
        #expect(written("") == #""""#)
        #expect(written("plain") == #""plain""#)
        #expect(written("\"") == #""\"""#)
        #expect(written("a\"b\\c") == #""a\"b\\c""#)
        #expect(written("\\\\") == #""\\\\""#)
        #expect(written("\n\u{01}x\u{1F}") == #""\u000a\u0001x\u001f""#)
        #expect(written("end\"") == #""end\"""#)
        #expect(written("café 😀 \u{7F}") == "\"café 😀 \u{7F}\"")
    }

    @Test func everyASCIIByteRoundTripsThroughTheScanner() throws {
        for b in UInt8(0)...0x7F {
            for s in [String(UnicodeScalar(b)), "a\(UnicodeScalar(b))b", "\(UnicodeScalar(b))\(UnicodeScalar(b))"] {
                let json = Array(written(s).utf8)
                #expect(JSONScanner.isValid(json), "byte \(b)")
                #expect(try JSONScanner.decodeString(json) == s, "byte \(b)")
            }
        }
    }

    @Test func aLongStringWithEscapesFarApartIsExact() throws {
        let s = String(repeating: "x", count: 5000) + "\"" + String(repeating: "é", count: 3000) + "\t"
        let json = Array(written(s).utf8)
        #expect(try JSONScanner.decodeString(json) == s)
        #expect(json.count == s.utf8.count + 2 + 1 + 5)
    }
}
