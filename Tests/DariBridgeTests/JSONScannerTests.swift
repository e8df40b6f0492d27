import Testing
@testable import DariBridge

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

private func scanError(_ input: [UInt8], maxDepth: Int = JSONScanner.defaultMaxDepth) -> JSONScanError? {
    do {
        _ = try JSONScanner.scan(input, maxDepth: maxDepth)
        return nil
    } catch {
        return error
    }
}

@Suite struct JSONScannerTests {
    @Test(arguments: [
        "{}", "[]", "0", "-0", "1.5e+10", "-12.25E-3", "12345678901234567890", "\"x\"", "true", "false", "null",
        " \t\r\n{ \"a\" : [ 1 , 2 , { } , [ ] ] , \"b\" : null } \n",
        #"{"a":"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00\ud800"}"#,
        "[\"héllo 😀 日本\"]",
    ])
    func acceptsValidDocuments(_ json: String) {
        #expect(JSONScanner.isValid(bytes(json)), "should accept \(json)")
    }

    @Test(arguments: [
        "", "   ", "{", "[", "{\"a\"", "{\"a\":", "{\"a\":1", "[1,", "\"abc", "{\"a\":1,}", "[1,]", "{,}", "[,1]",
        "{a:1}", "{'a':1}", "01", "-", "1.", ".5", "1e", "1e+", "+1", "0x10", "NaN", "Infinity", "tru", "nul", "True",
        "{}{}", "{} x", "[1 2]", "{\"a\" 1}", "{\"a\":1 \"b\":2}", "\"\\x\"", "\"\\u12\"", "\"\\u12G4\"", "\"\t\"",
        "\"a\nb\"", "// c\n{}", "{\"a\":1}/*x*/", "\u{FEFF}{}", "[1]\u{0}",
    ])
    func rejectsMalformedDocuments(_ json: String) {
        #expect(!JSONScanner.isValid(bytes(json)), "should reject \(json.debugDescription)")
    }

    @Test(arguments: [
        [0x22, 0xFF, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xE0, 0x80, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22],
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], [0x22, 0xE2, 0x82, 0x22], [0x22, 0x80, 0x22], [0x22, 0xF0, 0x9F, 0x98],
        [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22],
    ] as [[UInt8]])
    func rejectsInvalidUTF8InStrings(_ input: [UInt8]) throws {
        let error = try #require(scanError(input))
        #expect(error.kind == .invalidUTF8, "\(error)")
        #expect(error.offset == 1, "\(error)")
    }

    @Test func invalidUTF8OutsideStringsIsReportedAsUTF8() throws {
        let error = try #require(scanError([0x7B, 0xFF, 0x7D]))
        #expect(error.kind == .invalidUTF8)
        #expect(error.offset == 1)
        // A well-formed non-ASCII character outside a string is a syntax error.
        #expect(scanError(Array("{é}".utf8))?.kind == .syntax)
    }

    @Test func acceptsFourByteAndBoundaryUTF8() {
        #expect(JSONScanner.isValid([0x22, 0xF0, 0x9F, 0x98, 0x80, 0x22]))  // U+1F600
        #expect(JSONScanner.isValid([0x22, 0xF4, 0x8F, 0xBF, 0xBF, 0x22]))  // U+10FFFF
        #expect(JSONScanner.isValid([0x22, 0xEF, 0xBF, 0xBF, 0x22]))  // U+FFFF
        #expect(JSONScanner.isValid([0x22, 0xC2, 0x80, 0x22]))  // U+0080
    }

    @Test func errorMessagesCarryOffsetAndExpectation() throws {
        let error = try #require(scanError(bytes(#"{"a":1,"b":2 "c":3}"#)))
        #expect(error.offset == 13)
        #expect(error.kind == .syntax)
        #expect(error.description == "invalid JSON at byte 13: expected ',' or '}', found '\"'")

        let truncated = try #require(scanError(bytes(#"{"a":[1,2"#)))
        #expect(truncated.description == "invalid JSON at byte 9: expected ',' or ']', found end of input")

        let trailing = try #require(scanError(bytes("{} x")))
        #expect(trailing.offset == 3)
        #expect(trailing.reason.contains("end of input after the JSON value"))

        let control = try #require(scanError(bytes("[\"a\u{1}\"]")))
        #expect(control.offset == 3)
        #expect(control.reason == "unescaped control character 0x01 in string")

        let escape = try #require(scanError(bytes(#"["\q"]"#)))
        #expect(escape.reason == "invalid escape sequence '\\q'")

        let zero = try #require(scanError(bytes("[012]")))
        #expect(zero.offset == 2)
        #expect(zero.reason == "leading zeros are not allowed in numbers")

        let literal = try #require(scanError(bytes("[nulx]")))
        #expect(literal.offset == 1)
        #expect(literal.reason == "invalid literal, expected 'null'")

        let unterminated = try #require(scanError(bytes(#"{"abc"#)))
        #expect(unterminated.reason == "unterminated string starting at byte 1")
    }

    @Test func enforcesNestingDepth() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(JSONScanner.isValid(bytes(ok)))
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        let error = try #require(scanError(bytes(deep)))
        #expect(error.kind == .tooDeep)
        #expect(error.offset == 64)
        #expect(error.description == "invalid JSON at byte 64: nesting deeper than 64 levels")

        let objects = String(repeating: "{\"a\":", count: 3) + "1" + String(repeating: "}", count: 3)
        #expect(JSONScanner.isValid(bytes(objects), maxDepth: 3))
        #expect(scanError(bytes(objects), maxDepth: 2)?.kind == .tooDeep)
        #expect(scanError(bytes("{}"), maxDepth: 0)?.kind == .tooDeep)
        // Very deep input fails cleanly rather than overflowing the stack.
        #expect(scanError(bytes(String(repeating: "[", count: 100_000)))?.kind == .tooDeep)
    }

    @Test func topLevelObjectMembers() throws {
        let input = bytes(#" {"s":"v\"x","n":-1.5e3,"o":{"k":[1]},"a":[],"t":true,"f":false,"z":null,"s":"dup"} "#)
        let doc = try JSONScanner.scan(input)
        #expect(doc.kind == .object)
        #expect(doc.valueRange == 1..<(input.count - 1))
        #expect(doc.members.map(\.key) == ["s", "n", "o", "a", "t", "f", "z", "s"])
        #expect(doc.members.map(\.kind) == [.string, .number, .object, .array, .bool, .bool, .null, .string])
        let raw = doc.members.map { String(decoding: input[$0.valueRange], as: UTF8.self) }
        #expect(raw == [#""v\"x""#, "-1.5e3", #"{"k":[1]}"#, "[]", "true", "false", "null", #""dup""#])
    }

    @Test func escapedKeysAreDecoded() throws {
        let doc = try JSONScanner.scan(bytes(#"{"a\u0062\"c\\":1,"\uD83D\uDE00":2}"#))
        #expect(doc.members.map(\.key) == ["ab\"c\\", "😀"])
    }

    @Test func nonObjectDocumentsHaveNoMembers() throws {
        let doc = try JSONScanner.scan(bytes("  [1, {\"a\": 2}]  "))
        #expect(doc.kind == .array)
        #expect(doc.members.isEmpty)
        #expect(doc.valueRange == 2..<15)
        #expect(try JSONScanner.scan(bytes("\"s\"")).kind == .string)
        #expect(try JSONScanner.scan(bytes("7")).kind == .number)
        #expect(try JSONScanner.scan(bytes("null")).kind == .null)
    }

    @Test func scanSubrangeReportsAbsoluteOffsets() throws {
        let input = bytes(#"xx{"k":1,"m":"v"}yy"#)
        let doc = try JSONScanner.scan(input, in: 2..<17)
        #expect(doc.members.map(\.key) == ["k", "m"])
        #expect(doc.members[0].valueRange == 7..<8)
        let error = try #require(scanError(Array(input[0..<17])))
        #expect(error.offset == 0)
    }

    @Test func scanUnsafeBuffer() throws {
        let input = bytes(#"{"a":[true]}"#)
        let doc = try input.withUnsafeBytes { try JSONScanner.scan($0) }
        #expect(doc.members.first?.kind == .array)
        #expect(input.withUnsafeBytes { JSONScanner.isValid($0) })
        #expect(!bytes("{").withUnsafeBytes { JSONScanner.isValid($0) })
    }

    @Test func decodeStringHandlesEscapes() throws {
        #expect(try JSONScanner.decodeString(bytes(#""plain""#)) == "plain")
        #expect(try JSONScanner.decodeString(bytes(#""\"\\\/\b\f\n\r\t""#)) == "\"\\/\u{8}\u{C}\n\r\t")
        #expect(try JSONScanner.decodeString(bytes(#""caf\u00e9 \u00E9""#)) == "café é")
        #expect(try JSONScanner.decodeString(bytes(#""\uD83D\uDE00!""#)) == "😀!")
        #expect(try JSONScanner.decodeString(bytes(#""\u20AC\u0000""#)) == "€\u{0}")
        #expect(try JSONScanner.decodeString(bytes("\"raw 😀 é\"")) == "raw 😀 é")
        // Lone surrogates are accepted and replaced.
        #expect(try JSONScanner.decodeString(bytes(#""a\uD800b""#)) == "a\u{FFFD}b")
        #expect(try JSONScanner.decodeString(bytes(#""\uDE00\uD83D""#)) == "\u{FFFD}\u{FFFD}")
        #expect(try JSONScanner.decodeString(bytes(#""\uD83D\u0041""#)) == "\u{FFFD}A")
        let input = bytes(#"[1,"x\ty"]"#)
        #expect(try JSONScanner.decodeString(input, literal: 3..<9) == "x\ty")
    }

    @Test func decodeStringRejectsNonLiterals() {
        #expect(throws: JSONScanError.self) { try JSONScanner.decodeString(bytes("abc")) }
        #expect(throws: JSONScanError.self) { try JSONScanner.decodeString(bytes(#""abc"x"#)) }
        #expect(throws: JSONScanError.self) { try JSONScanner.decodeString(bytes(#""abc"#)) }
        #expect(throws: JSONScanError.self) { try JSONScanner.decodeString([0x22, 0xFF, 0x22]) }
        #expect(throws: JSONScanError.self) { try JSONScanner.decodeString(bytes("")) }
    }

    @Test func firstInvalidUTF8Offset() {
        #expect(JSONScanner.firstInvalidUTF8Offset(bytes("héllo 😀")) == nil)
        #expect(JSONScanner.firstInvalidUTF8Offset([0x61, 0x62, 0xC3]) == 2)
        #expect(JSONScanner.firstInvalidUTF8Offset([0x61, 0xED, 0xA0, 0x80]) == 1)
    }
}
