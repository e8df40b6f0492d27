// A strict RFC 8259 JSON validator/scanner over raw bytes. It never builds a value tree:
// it validates a document and reports where values are, so callers can forward raw bytes
// unchanged (numbers keep every digit, strings keep their escapes).

/// The type of a JSON value.
package enum JSONValueKind: String, Sendable, Equatable {
    case string, number, object, array, bool, null
}

/// Why a byte sequence is not acceptable JSON. `offset` is an absolute index into the scanned bytes.
package struct JSONScanError: Error, Sendable, Equatable, CustomStringConvertible {
    package enum Kind: Sendable, Equatable { case syntax, invalidUTF8, tooDeep }
    package var kind: Kind
    package var offset: Int
    package var reason: String
    package var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

/// One member of a top-level object: its decoded key and where its raw value is.
package struct JSONMember: Sendable, Equatable {
    package var key: String
    package var valueRange: Range<Int>
    package var kind: JSONValueKind
}

/// The result of scanning a document: the top-level value, and its members when it is an object
/// (in document order, duplicates included).
package struct JSONDocument: Sendable, Equatable {
    package var kind: JSONValueKind
    package var valueRange: Range<Int>
    package var members: [JSONMember]
}

package enum JSONScanner {
    package static let defaultMaxDepth = 64

    /// Validates `bytes[range]` (default: all of it) as one JSON document; only whitespace may surround the value.
    package static func scan(
        _ bytes: [UInt8], in range: Range<Int>? = nil, maxDepth: Int = defaultMaxDepth
    ) throws(JSONScanError) -> JSONDocument {
        try bytes.withUnsafeBytes { buf in
            Result { () throws(JSONScanError) in try scan(buf, in: range, maxDepth: maxDepth) }
        }.get()
    }

    /// Validates `buffer[range]` (default: all of it) as one JSON document.
    package static func scan(
        _ buffer: UnsafeRawBufferPointer, in range: Range<Int>? = nil, maxDepth: Int = defaultMaxDepth
    ) throws(JSONScanError) -> JSONDocument {
        let r = range ?? 0..<buffer.count
        precondition(r.lowerBound >= 0 && r.upperBound <= buffer.count, "range out of bounds")
        var p = Parser(buf: buffer, pos: r.lowerBound, end: r.upperBound, maxDepth: maxDepth)
        p.skipWhitespace()
        let start = p.pos
        var members: [JSONMember] = []
        let kind: JSONValueKind
        if p.pos < p.end && p.buf[p.pos] == JSONByte.lbrace {
            members = try p.parseObject(depth: 1, collect: true)
            kind = .object
        } else {
            kind = try p.parseValue(depth: 0)
        }
        let valueEnd = p.pos
        p.skipWhitespace()
        if p.pos < p.end { throw p.unexpected("end of input after the JSON value") }
        return JSONDocument(kind: kind, valueRange: start..<valueEnd, members: members)
    }

    package static func isValid(_ bytes: [UInt8], maxDepth: Int = defaultMaxDepth) -> Bool {
        (try? scan(bytes, maxDepth: maxDepth)) != nil
    }

    package static func isValid(_ buffer: UnsafeRawBufferPointer, maxDepth: Int = defaultMaxDepth) -> Bool {
        (try? scan(buffer, maxDepth: maxDepth)) != nil
    }

    /// Decodes the JSON string literal at `bytes[range]` (quotes included; default: all of `bytes`),
    /// resolving escapes incl. surrogate pairs. A lone surrogate escape becomes U+FFFD.
    package static func decodeString(_ bytes: [UInt8], literal range: Range<Int>? = nil) throws(JSONScanError) -> String {
        try bytes.withUnsafeBytes { buf in Result { () throws(JSONScanError) -> String in
            let r = range ?? 0..<buf.count
            precondition(r.lowerBound >= 0 && r.upperBound <= buf.count, "range out of bounds")
            var p = Parser(buf: buf, pos: r.lowerBound, end: r.upperBound, maxDepth: 0)
            guard p.pos < p.end, buf[p.pos] == JSONByte.quote else { throw p.unexpected("'\"' to start a string") }
            let escaped = try p.parseString()
            if p.pos < p.end { throw p.unexpected("end of the string literal") }
            return decodeValidatedString(buf, r.lowerBound, r.upperBound, escaped: escaped)
        } }.get()
    }

    /// The offset of the first byte that does not start a valid UTF-8 sequence, or nil if all of it is valid.
    package static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBytes { buf -> Int? in
            var i = 0
            while i < buf.count {
                if buf[i] < 0x80 { i += 1; continue }
                let n = utf8SequenceLength(buf, i, buf.count)
                if n == 0 { return i }
                i += n
            }
            return nil
        }
    }
}

/// ASCII byte constants.
enum JSONByte {
    static let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\"), slash = UInt8(ascii: "/")
    static let lbrace = UInt8(ascii: "{"), rbrace = UInt8(ascii: "}"), lbracket = UInt8(ascii: "[")
    static let rbracket = UInt8(ascii: "]"), colon = UInt8(ascii: ":"), comma = UInt8(ascii: ",")
    static let minus = UInt8(ascii: "-"), plus = UInt8(ascii: "+"), dot = UInt8(ascii: "."), zero = UInt8(ascii: "0")
    static let b = UInt8(ascii: "b"), f = UInt8(ascii: "f"), n = UInt8(ascii: "n"), r = UInt8(ascii: "r")
    static let t = UInt8(ascii: "t"), u = UInt8(ascii: "u"), e = UInt8(ascii: "e"), E = UInt8(ascii: "E")

    /// 0...15 for a hex digit, 0xFF otherwise.
    @inline(__always) static func hexValue(_ b: UInt8) -> UInt8 {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: 0xFF
        }
    }
}

@inline(__always) private func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }

/// Length of the well-formed (RFC 3629) multi-byte UTF-8 sequence starting at `i`, or 0 if it is not one.
private func utf8SequenceLength(_ buf: UnsafeRawBufferPointer, _ i: Int, _ end: Int) -> Int {
    let b0 = buf[i]
    let n: Int, lo: UInt8, hi: UInt8
    switch b0 {
    case 0xC2...0xDF: n = 2; lo = 0x80; hi = 0xBF
    case 0xE0: n = 3; lo = 0xA0; hi = 0xBF
    case 0xE1...0xEC, 0xEE...0xEF: n = 3; lo = 0x80; hi = 0xBF
    case 0xED: n = 3; lo = 0x80; hi = 0x9F  // no UTF-16 surrogates
    case 0xF0: n = 4; lo = 0x90; hi = 0xBF
    case 0xF1...0xF3: n = 4; lo = 0x80; hi = 0xBF
    case 0xF4: n = 4; lo = 0x80; hi = 0x8F  // nothing above U+10FFFF
    default: return 0
    }
    guard i + n <= end, (lo...hi).contains(buf[i + 1]) else { return 0 }
    for k in 2..<max(n, 2) where buf[i + k] & 0xC0 != 0x80 { return 0 }
    return n
}

private struct Parser {
    let buf: UnsafeRawBufferPointer
    var pos: Int
    let end: Int
    let maxDepth: Int

    mutating func skipWhitespace() {
        while pos < end, buf[pos] == 0x20 || buf[pos] == 0x0A || buf[pos] == 0x0D || buf[pos] == 0x09 { pos += 1 }
    }

    /// "expected X, found Y" at `pos`; an invalid UTF-8 byte is reported as such.
    func unexpected(_ expected: String) -> JSONScanError {
        guard pos < end else { return JSONScanError(kind: .syntax, offset: pos, reason: "expected \(expected), found end of input") }
        let b = buf[pos]
        if b >= 0x80 && utf8SequenceLength(buf, pos, end) == 0 {
            return JSONScanError(kind: .invalidUTF8, offset: pos, reason: "invalid UTF-8 byte 0x\(hex(b))")
        }
        let found = (0x21...0x7E).contains(b) ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(hex(b))"
        return JSONScanError(kind: .syntax, offset: pos, reason: "expected \(expected), found \(found)")
    }

    func hex(_ b: UInt8) -> String { (b < 0x10 ? "0" : "") + String(b, radix: 16, uppercase: true) }

    func fail(_ offset: Int, _ reason: String) -> JSONScanError { JSONScanError(kind: .syntax, offset: offset, reason: reason) }

    mutating func parseValue(depth: Int) throws(JSONScanError) -> JSONValueKind {
        guard pos < end else { throw unexpected("a value") }
        switch buf[pos] {
        case JSONByte.lbrace: _ = try parseObject(depth: depth + 1, collect: false); return .object
        case JSONByte.lbracket: try parseArray(depth: depth + 1); return .array
        case JSONByte.quote: _ = try parseString(); return .string
        case JSONByte.minus, 0x30...0x39: try parseNumber(); return .number
        case JSONByte.t: try parseLiteral("true"); return .bool
        case JSONByte.f: try parseLiteral("false"); return .bool
        case JSONByte.n: try parseLiteral("null"); return .null
        default: throw unexpected("a value")
        }
    }

    func checkDepth(_ depth: Int) throws(JSONScanError) {
        if depth > maxDepth { throw JSONScanError(kind: .tooDeep, offset: pos, reason: "nesting deeper than \(maxDepth) levels") }
    }

    /// `pos` is at '{'. Decodes member keys only when `collect` is set.
    mutating func parseObject(depth: Int, collect: Bool) throws(JSONScanError) -> [JSONMember] {
        try checkDepth(depth)
        pos += 1
        var members: [JSONMember] = []
        // A resume request has two or three members: one allocation, not one per doubling.
        if collect { members.reserveCapacity(4) }
        skipWhitespace()
        if pos < end && buf[pos] == JSONByte.rbrace { pos += 1; return members }
        var first = true
        while true {
            guard pos < end, buf[pos] == JSONByte.quote else { throw unexpected(first ? "'\"' or '}'" : "'\"' to start a key") }
            first = false
            let keyStart = pos
            let escaped = try parseString()
            let keyEnd = pos
            skipWhitespace()
            guard pos < end, buf[pos] == JSONByte.colon else { throw unexpected("':'") }
            pos += 1
            skipWhitespace()
            let valueStart = pos
            let kind = try parseValue(depth: depth)
            if collect {
                let key = JSONScanner.decodeValidatedString(buf, keyStart, keyEnd, escaped: escaped)
                members.append(JSONMember(key: key, valueRange: valueStart..<pos, kind: kind))
            }
            skipWhitespace()
            guard pos < end else { throw unexpected("',' or '}'") }
            if buf[pos] == JSONByte.comma { pos += 1; skipWhitespace(); continue }
            if buf[pos] == JSONByte.rbrace { pos += 1; return members }
            throw unexpected("',' or '}'")
        }
    }

    /// `pos` is at '['.
    mutating func parseArray(depth: Int) throws(JSONScanError) {
        try checkDepth(depth)
        pos += 1
        skipWhitespace()
        if pos < end && buf[pos] == JSONByte.rbracket { pos += 1; return }
        while true {
            _ = try parseValue(depth: depth)
            skipWhitespace()
            guard pos < end else { throw unexpected("',' or ']'") }
            if buf[pos] == JSONByte.comma { pos += 1; skipWhitespace(); continue }
            if buf[pos] == JSONByte.rbracket { pos += 1; return }
            throw unexpected("',' or ']'")
        }
    }

    /// `pos` is at the opening quote; on return it is just past the closing one. Returns whether escapes occur.
    mutating func parseString() throws(JSONScanError) -> Bool {
        let open = pos
        pos += 1
        var escaped = false
        while pos < end {
            let b = buf[pos]
            if b == JSONByte.quote { pos += 1; return escaped }
            if b == JSONByte.backslash { escaped = true; try parseEscape(); continue }
            if b < 0x20 { throw fail(pos, "unescaped control character 0x\(hex(b)) in string") }
            if b < 0x80 { pos += 1; continue }
            let n = utf8SequenceLength(buf, pos, end)
            if n == 0 { throw JSONScanError(kind: .invalidUTF8, offset: pos, reason: "invalid UTF-8 in string at byte 0x\(hex(b))") }
            pos += n
        }
        throw fail(pos, "unterminated string starting at byte \(open)")
    }

    /// `pos` is at a backslash.
    mutating func parseEscape() throws(JSONScanError) {
        guard pos + 1 < end else { throw fail(end, "unterminated string") }
        switch buf[pos + 1] {
        case JSONByte.quote, JSONByte.backslash, JSONByte.slash, JSONByte.b, JSONByte.f, JSONByte.n, JSONByte.r, JSONByte.t: pos += 2
        case JSONByte.u:
            guard pos + 6 <= end, (2..<6).allSatisfy({ JSONByte.hexValue(buf[pos + $0]) != 0xFF }) else {
                throw fail(pos, "invalid \\u escape, expected 4 hex digits")
            }
            pos += 6
        default:
            let c = buf[pos + 1]
            let shown = (0x21...0x7E).contains(c) ? "\\\(Character(Unicode.Scalar(c)))" : "\\ followed by byte 0x\(hex(c))"
            throw fail(pos, "invalid escape sequence '\(shown)'")
        }
    }

    mutating func parseNumber() throws(JSONScanError) {
        if buf[pos] == JSONByte.minus { pos += 1 }
        guard pos < end, isDigit(buf[pos]) else { throw unexpected("a digit") }
        if buf[pos] == JSONByte.zero {
            pos += 1
            if pos < end && isDigit(buf[pos]) { throw fail(pos, "leading zeros are not allowed in numbers") }
        } else {
            while pos < end && isDigit(buf[pos]) { pos += 1 }
        }
        if pos < end && buf[pos] == JSONByte.dot {
            pos += 1
            guard pos < end, isDigit(buf[pos]) else { throw unexpected("a digit after '.'") }
            while pos < end && isDigit(buf[pos]) { pos += 1 }
        }
        if pos < end && (buf[pos] == JSONByte.e || buf[pos] == JSONByte.E) {
            pos += 1
            if pos < end && (buf[pos] == JSONByte.plus || buf[pos] == JSONByte.minus) { pos += 1 }
            guard pos < end, isDigit(buf[pos]) else { throw unexpected("a digit in the exponent") }
            while pos < end && isDigit(buf[pos]) { pos += 1 }
        }
    }

    mutating func parseLiteral(_ word: StaticString) throws(JSONScanError) {
        let start = pos
        let ok = word.withUTF8Buffer { w in
            guard end - start >= w.count else { return false }
            for k in 0..<w.count where buf[start + k] != w[k] { return false }
            return true
        }
        guard ok else { throw fail(start, "invalid literal, expected '\(word)'") }
        pos += word.utf8CodeUnitCount
    }
}
