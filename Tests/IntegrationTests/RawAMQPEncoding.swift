import Foundation

// Wire encoding for the raw AMQP 0-9-1 test publisher: field tables with every
// field type and any key bytes (empty, 255 bytes, not UTF-8), basic properties
// with raw bytes, and escape hatches for what no well-behaved client writes
// (unknown kind bytes, truncated tables, 20,000-level nesting).
//
// Field kinds are RabbitMQ's (and librabbitmq's) reading of the 0-9-1 errata:
// 's' is a signed 16-bit integer (not a short string), 'u' u16, 'I' i32,
// 'i' u32, 'l' i64, 'L' u64 (librabbitmq only; RabbitMQ has no 'L').

struct WireWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes += [UInt8(v >> 8), UInt8(v & 0xFF)] }
    mutating func u32(_ v: UInt32) { for s in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8((v >> UInt32(s)) & 0xFF)) } }
    mutating func u64(_ v: UInt64) { for s in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((v >> UInt64(s)) & 0xFF)) } }
    /// A short string: one length byte. Longer input is cut at 255 bytes.
    mutating func shortString(_ b: [UInt8]) {
        let cut = b.prefix(255)
        u8(UInt8(cut.count))
        bytes += cut
    }
    mutating func shortString(_ s: String) { shortString(Array(s.utf8)) }
    mutating func longString(_ b: [UInt8]) {
        u32(UInt32(truncatingIfNeeded: b.count))
        bytes += b
    }
}

/// One field value, of any kind, or raw bytes after any kind byte.
indirect enum RawField: Sendable {
    case bool(Bool)
    case int8(Int8)
    case uint8(UInt8)
    case int16(Int16)
    case uint16(UInt16)
    case int32(Int32)
    case uint32(UInt32)
    case int64(Int64)
    case uint64(UInt64)
    case float(Float)
    case double(Double)
    case decimal(scale: UInt8, value: UInt32)
    case longString([UInt8])
    case bytes([UInt8])
    case array([RawField])
    case timestamp(UInt64)
    case table(RawTable)
    case void
    /// A kind byte followed by whatever bytes (unknown kinds, truncated values, prebuilt nesting).
    case raw(kind: UInt8, payload: [UInt8])

    static func string(_ s: String) -> RawField { .longString(Array(s.utf8)) }

    func encode(into w: inout WireWriter) {
        switch self {
        case .bool(let v): w.u8(UInt8(ascii: "t")); w.u8(v ? 1 : 0)
        case .int8(let v): w.u8(UInt8(ascii: "b")); w.u8(UInt8(bitPattern: v))
        case .uint8(let v): w.u8(UInt8(ascii: "B")); w.u8(v)
        case .int16(let v): w.u8(UInt8(ascii: "s")); w.u16(UInt16(bitPattern: v))
        case .uint16(let v): w.u8(UInt8(ascii: "u")); w.u16(v)
        case .int32(let v): w.u8(UInt8(ascii: "I")); w.u32(UInt32(bitPattern: v))
        case .uint32(let v): w.u8(UInt8(ascii: "i")); w.u32(v)
        case .int64(let v): w.u8(UInt8(ascii: "l")); w.u64(UInt64(bitPattern: v))
        case .uint64(let v): w.u8(UInt8(ascii: "L")); w.u64(v)
        case .float(let v): w.u8(UInt8(ascii: "f")); w.u32(v.bitPattern)
        case .double(let v): w.u8(UInt8(ascii: "d")); w.u64(v.bitPattern)
        case .decimal(let scale, let value): w.u8(UInt8(ascii: "D")); w.u8(scale); w.u32(value)
        case .longString(let b): w.u8(UInt8(ascii: "S")); w.longString(b)
        case .bytes(let b): w.u8(UInt8(ascii: "x")); w.longString(b)
        case .array(let items):
            w.u8(UInt8(ascii: "A"))
            var inner = WireWriter()
            for item in items { item.encode(into: &inner) }
            w.longString(inner.bytes)
        case .timestamp(let v): w.u8(UInt8(ascii: "T")); w.u64(v)
        case .table(let t): w.u8(UInt8(ascii: "F")); w.bytes += t.encoded()
        case .void: w.u8(UInt8(ascii: "V"))
        case .raw(let kind, let payload): w.u8(kind); w.bytes += payload
        }
    }

    /// `depth` arrays, each holding the next, the innermost holding one long
    /// string `leaf`. Built without recursion (20,000 levels are fine).
    static func nestedArrays(depth: Int, leaf: String = "deep") -> RawField {
        var w = WireWriter()
        RawField.string(leaf).encode(into: &w)
        var inner = w.bytes
        // Each level wraps the content in 'A' + 4-byte length; lengths known ahead.
        var lengths: [Int] = []
        var length = inner.count
        for _ in 0..<max(depth - 1, 0) { lengths.append(length); length += 5 }
        var out = WireWriter()
        for l in lengths.reversed() { out.u8(UInt8(ascii: "A")); out.u32(UInt32(l + 0)) }
        // The outermost array's content: the nested prefixes + leaf.
        out.bytes += inner
        inner = out.bytes
        return .raw(kind: UInt8(ascii: "A"), payload: { var l = WireWriter(); l.longString(inner); return l.bytes }())
    }

    /// `depth` tables, each with one entry `key` holding the next; the innermost
    /// holds `{"leaf": "deep"}`. Built without recursion.
    static func nestedTables(depth: Int, key: String = "n") -> RawField {
        var w = WireWriter()
        w.shortString("leaf")
        RawField.string("deep").encode(into: &w)
        let leaf = w.bytes
        let keyBytes = Array(key.utf8)
        let levelHeader = 1 + keyBytes.count + 1 + 4  // key length, key, 'F', table length
        var lengths: [Int] = []
        var length = leaf.count
        for _ in 0..<max(depth - 1, 0) { lengths.append(length); length += levelHeader }
        var out = WireWriter()
        out.u32(UInt32(length))
        for l in lengths.reversed() { out.shortString(keyBytes); out.u8(UInt8(ascii: "F")); out.u32(UInt32(l)) }
        out.bytes += leaf
        return .raw(kind: UInt8(ascii: "F"), payload: out.bytes)
    }
}

/// A field table with entries in order; keys are raw bytes (any length up to 255, any bytes).
struct RawTable: Sendable {
    var entries: [(key: [UInt8], value: RawField)]

    init(_ entries: [(key: [UInt8], value: RawField)] = []) { self.entries = entries }
    init(_ pairs: KeyValuePairs<String, RawField>) { entries = pairs.map { (Array($0.key.utf8), $0.value) } }

    /// Length-prefixed table bytes.
    func encoded() -> [UInt8] {
        var inner = WireWriter()
        for (key, value) in entries {
            inner.shortString(key)
            value.encode(into: &inner)
        }
        var w = WireWriter()
        w.longString(inner.bytes)
        return w.bytes
    }
}

/// basic properties with raw bytes for every string, so anything can be sent.
/// `headersBytes` (a length-prefixed table as sent) wins over `headers`.
struct RawProperties: Sendable {
    var contentType: [UInt8]? = Array("application/json".utf8)
    var contentEncoding: [UInt8]?
    var headers: RawTable?
    var headersBytes: [UInt8]?
    var deliveryMode: UInt8? = 2
    var priority: UInt8?
    var correlationId: [UInt8]?
    var replyTo: [UInt8]?
    var expiration: [UInt8]?
    var messageId: [UInt8]?
    var timestamp: UInt64?
    var type: [UInt8]?
    var userId: [UInt8]?
    var appId: [UInt8]?

    init(messageId: String? = nil, headers: RawTable? = nil) {
        self.messageId = messageId.map { Array($0.utf8) }
        self.headers = headers
    }

    /// Property flags and the property list, in the order of the flag bits.
    func encoded() -> (flags: UInt16, bytes: [UInt8]) {
        var flags: UInt16 = 0
        var w = WireWriter()
        func short(_ v: [UInt8]?, _ bit: UInt16) {
            guard let v else { return }
            flags |= 1 << bit
            w.shortString(v)
        }
        short(contentType, 15)
        short(contentEncoding, 14)
        if let table = headersBytes ?? headers?.encoded() {
            flags |= 1 << 13
            w.bytes += table
        }
        if let deliveryMode { flags |= 1 << 12; w.u8(deliveryMode) }
        if let priority { flags |= 1 << 11; w.u8(priority) }
        short(correlationId, 10)
        short(replyTo, 9)
        short(expiration, 8)
        short(messageId, 7)
        if let timestamp { flags |= 1 << 6; w.u64(timestamp) }
        short(type, 5)
        short(userId, 4)
        short(appId, 3)
        return (flags, w.bytes)
    }
}
