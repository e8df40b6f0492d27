#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A minimal append-only JSON byte writer (no Foundation JSON): string escaping, integers,
/// raw splices and RFC 3339 timestamps.
package struct JSONWriter {
    package private(set) var bytes: [UInt8] = []

    package init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    /// Appends ASCII text as-is (punctuation, keys known not to need escaping).
    package mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// Appends already valid JSON bytes unchanged.
    package mutating func raw(_ json: [UInt8]) {
        bytes.append(contentsOf: json)
    }

    package mutating func null() {
        raw("null")
    }

    /// Appends a quoted JSON string: `"` and `\` are backslash-escaped, control characters
    /// below 0x20 become `\u00XX`, everything else (incl. non-ASCII UTF-8) is copied.
    package mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            bytes.append(0x22)
            // Runs that need no escape are copied whole.
            var runStart = 0
            for i in utf8.indices {
                let b = utf8[i]
                guard b == 0x22 || b == 0x5C || b < 0x20 else { continue }
                if runStart < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
                appendEscaped(b)
                runStart = i + 1
            }
            if runStart < utf8.count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
            bytes.append(0x22)
        }
    }

    private mutating func appendEscaped(_ b: UInt8) {
        bytes.append(0x5C)
        switch b {
        case 0x22, 0x5C: bytes.append(b)
        default:
            bytes.append(0x75)
            bytes.append(0x30)
            bytes.append(0x30)
            bytes.append(JSONWriter.hexDigit(b >> 4))
            bytes.append(JSONWriter.hexDigit(b & 0xF))
        }
    }

    mutating func string(_ value: String?) {
        if let value { string(value) } else { null() }
    }

    mutating func int(_ value: Int) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        appendDigits(UInt64(value.magnitude), minWidth: 1)
    }

    mutating func int(_ value: Int?) {
        if let value { int(value) } else { null() }
    }

    /// Appends a quoted RFC 3339 UTC timestamp with milliseconds, e.g. `"2026-11-29T05:12:05.123Z"`.
    package mutating func timestamp(_ date: Date) {
        bytes.append(0x22)
        appendRFC3339(date)
        bytes.append(0x22)
    }

    /// `date` as RFC 3339 UTC with milliseconds (rounded to the nearest millisecond; years clamped to 0000...9999).
    static func rfc3339(_ date: Date) -> String {
        var w = JSONWriter(capacity: 24)
        w.appendRFC3339(date)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    private mutating func appendRFC3339(_ date: Date) {
        // Clamp to 0000-01-01T00:00:00.000Z ... 9999-12-31T23:59:59.999Z (also maps NaN to the lower bound).
        let minMs = -62_167_219_200_000.0, maxMs = 253_402_300_799_999.0
        let ms = (date.timeIntervalSince1970 * 1000).rounded()
        let totalMs = Int64(ms >= minMs ? min(ms, maxMs) : minMs)
        let (totalSeconds, millis) = floorDivMod(totalMs, 1000)
        let (days, secondOfDay) = floorDivMod(totalSeconds, 86_400)
        let (year, month, day) = JSONWriter.civilFromDays(days)
        appendFixed(UInt64(year), width: 4)
        bytes.append(UInt8(ascii: "-"))
        appendFixed(UInt64(month), width: 2)
        bytes.append(UInt8(ascii: "-"))
        appendFixed(UInt64(day), width: 2)
        bytes.append(UInt8(ascii: "T"))
        appendFixed(UInt64(secondOfDay / 3600), width: 2)
        bytes.append(UInt8(ascii: ":"))
        appendFixed(UInt64(secondOfDay / 60 % 60), width: 2)
        bytes.append(UInt8(ascii: ":"))
        appendFixed(UInt64(secondOfDay % 60), width: 2)
        bytes.append(UInt8(ascii: "."))
        appendFixed(UInt64(millis), width: 3)
        bytes.append(UInt8(ascii: "Z"))
    }

    /// Howard Hinnant's civil_from_days: days since 1970-01-01 -> proleptic Gregorian (year, month, day).
    static func civilFromDays(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private func floorDivMod(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
        let q = a / b, r = a % b
        return r < 0 ? (q - 1, r + b) : (q, r)
    }

    /// Exactly `width` (1...4) decimal digits of `value` (which must be below 10^width), zero-padded.
    private mutating func appendFixed(_ value: UInt64, width: Int) {
        var divisor: UInt64 = width >= 4 ? 1000 : width == 3 ? 100 : width == 2 ? 10 : 1
        while divisor > 0 {
            bytes.append(UInt8(truncatingIfNeeded: value / divisor % 10) + 0x30)
            divisor /= 10
        }
    }

    private mutating func appendDigits(_ value: UInt64, minWidth: Int) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var v = value
        withUnsafeMutableBytes(of: &digits) { d in
            repeat {
                d[19 - count] = UInt8(truncatingIfNeeded: v % 10) + 0x30
                v /= 10
                count += 1
            } while v > 0 || count < minWidth
            // Byte by byte: `append(contentsOf:)` of the raw slice went through the generic
            // sequence path (about 500 instructions a call; a timestamp makes seven).
            for i in (20 - count)..<20 { bytes.append(d[i]) }
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? 0x30 + nibble : 0x61 + nibble - 10
    }
}

// MARK: - JSON string literal decoding (used by JSONScanner)

extension JSONScanner {
    /// Decodes an already validated literal spanning `start..<end` (quotes included).
    static func decodeValidatedString(_ buf: UnsafeRawBufferPointer, _ start: Int, _ end: Int, escaped: Bool) -> String {
        let stop = end - 1
        if !escaped { return String(decoding: UnsafeRawBufferPointer(rebasing: buf[(start + 1)..<stop]), as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(stop - start)
        var i = start + 1
        while i < stop {
            let b = buf[i]
            if b != JSONByte.backslash { out.append(b); i += 1; continue }
            let c = buf[i + 1]
            i += 2
            switch c {
            case JSONByte.b: out.append(0x08)
            case JSONByte.f: out.append(0x0C)
            case JSONByte.n: out.append(0x0A)
            case JSONByte.r: out.append(0x0D)
            case JSONByte.t: out.append(0x09)
            case JSONByte.u:
                var scalar = hex4(buf, i)
                i += 4
                if (0xD800...0xDBFF).contains(scalar), i + 6 <= stop, buf[i] == JSONByte.backslash, buf[i + 1] == JSONByte.u {
                    let low = hex4(buf, i + 2)
                    if (0xDC00...0xDFFF).contains(low) {
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        i += 6
                    }
                }
                if (0xD800...0xDFFF).contains(scalar) { scalar = 0xFFFD }
                appendUTF8(scalar, to: &out)
            default: out.append(c)  // '"', '\\', '/'
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

private func hex4(_ buf: UnsafeRawBufferPointer, _ i: Int) -> UInt32 {
    var v: UInt32 = 0
    for k in 0..<4 { v = v << 4 | UInt32(JSONByte.hexValue(buf[i + k])) }
    return v
}

private func appendUTF8(_ scalar: UInt32, to out: inout [UInt8]) {
    switch scalar {
    case ..<0x80: out.append(UInt8(scalar))
    case ..<0x800: out.append(contentsOf: [UInt8(0xC0 | scalar >> 6), UInt8(0x80 | scalar & 0x3F)])
    case ..<0x10000:
        out.append(contentsOf: [UInt8(0xE0 | scalar >> 12), UInt8(0x80 | scalar >> 6 & 0x3F), UInt8(0x80 | scalar & 0x3F)])
    default:
        out.append(contentsOf: [UInt8(0xF0 | scalar >> 18), UInt8(0x80 | scalar >> 12 & 0x3F),
                                UInt8(0x80 | scalar >> 6 & 0x3F), UInt8(0x80 | scalar & 0x3F)])
    }
}
