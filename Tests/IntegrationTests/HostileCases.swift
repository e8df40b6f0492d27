import Foundation

/// One hostile publish for the worker: properties (raw bytes where it matters)
/// around a valid resume request for FakeDari id `id`.
struct HostileCase: Sendable, CustomStringConvertible {
    var id: String
    var properties: RawProperties
    var description: String { id }

    /// A case whose only oddity is its headers table (message_id = id).
    init(_ id: String, headers: RawTable) {
        self.id = id
        properties = RawProperties(messageId: id, headers: headers)
    }

    init(_ id: String, change: (inout RawProperties) -> Void) {
        self.id = id
        var p = RawProperties(messageId: id)
        change(&p)
        properties = p
    }

    /// `header` set to `value`, for every case of `HostileCases.values`.
    static func everyValue(of header: String, prefix: String) -> [HostileCase] {
        HostileCases.values.map { name, value in HostileCase("\(prefix)-\(name)", headers: RawTable([(Array(header.utf8), value)])) }
    }
}

enum HostileCases {
    static let hugeString = RawField.longString(Array(repeating: UInt8(ascii: "9"), count: 100_000))
    static let fortyK = RawField.longString(Array(repeating: UInt8(ascii: "7"), count: 40_000))

    /// Every field type with its extreme values, and strings that look like numbers.
    static let values: [(String, RawField)] = [
        ("i8min", .int8(.min)), ("i8max", .int8(.max)), ("u8max", .uint8(.max)),
        ("i16min", .int16(.min)), ("i16max", .int16(.max)), ("u16max", .uint16(.max)),
        ("i32min", .int32(.min)), ("i32max", .int32(.max)), ("u32max", .uint32(.max)),
        ("i64min", .int64(.min)), ("i64max", .int64(.max)), ("i64minus1", .int64(-1)), ("i64zero", .int64(0)),
        ("u64max", .uint64(.max)), ("u64big", .uint64(UInt64(Int64.max) + 1)),
        // NaN and infinities never reach a consumer: RabbitMQ refuses them (541, see BrokerPassThroughProbeTests).
        ("float-max", .float(.greatestFiniteMagnitude)), ("float-neg", .float(-1.5)), ("float-two", .float(2)),
        ("double-max", .double(.greatestFiniteMagnitude)), ("double-min", .double(-.greatestFiniteMagnitude)), ("double-tiny", .double(.leastNonzeroMagnitude)),
        ("decimal", .decimal(scale: 255, value: .max)),
        ("str-two", .string("2")), ("str-i64min", .string("-9223372036854775808")), ("str-i64max", .string("9223372036854775807")),
        ("str-overflow", .string("99999999999999999999")), ("str-neg-overflow", .string("-99999999999999999999")),
        ("str-abc", .string("abc")), ("str-empty", .string("")), ("str-space", .string(" 3 ")), ("str-nonutf8", .longString([0xFF, 0x31])),
        ("str-huge", hugeString),
        ("bool-true", .bool(true)), ("bool-false", .bool(false)),
        ("table", .table(RawTable(["x-dari-attempts": .int64(.min)]))), ("array", .array([.int64(.min), .int64(.max)])),
        ("array-empty", .array([])), ("void", .void), ("bytes", .bytes([0xFF, 0x00])), ("timestamp", .timestamp(.max)),
    ]

    static let validTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    /// traceparent of every type, and malformed strings (header injection, wrong lengths, bad ids).
    static var traceparents: [HostileCase] {
        var cases = HostileCase.everyValue(of: "traceparent", prefix: "tp")
        let strings: [(String, [UInt8])] = [
            ("crlf-injection", Array((validTraceparent + "\r\nX-Injected: 1").utf8)),
            ("lf-inside", Array("00-4bf92f3577b34da6a3ce929d0e0e4736\n00f067aa0ba902b7-01".utf8)),
            ("nul-inside", Array("00-4bf92f3577b34da6a3ce929d0e0e4736".utf8) + [0] + Array("00f067aa0ba902b7-01".utf8)),
            ("uppercase", Array(validTraceparent.uppercased().utf8)),
            ("zero-trace", Array("00-00000000000000000000000000000000-00f067aa0ba902b7-01".utf8)),
            ("version-ff", Array("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".utf8)),
            ("too-long", Array((validTraceparent + "-01").utf8)), ("short", Array("00-1-2-01".utf8)),
            ("nonutf8", [0xFF] + Array(validTraceparent.utf8.dropFirst())),
            ("as-bytes-valid", []),
        ]
        for (name, bytes) in strings {
            let value: RawField = name == "as-bytes-valid" ? .bytes(Array(validTraceparent.utf8)) : .longString(bytes)
            cases.append(HostileCase("tp-\(name)", headers: RawTable([(Array("traceparent".utf8), value)])))
        }
        cases.append(HostileCase("tp-valid", headers: RawTable(["traceparent": .string(validTraceparent)])))
        cases.append(HostileCase("tp-duplicate", headers: RawTable([(Array("traceparent".utf8), .int8(1)), (Array("traceparent".utf8), .string(validTraceparent))])))
        return cases
    }

    /// Keys the broker passes through that librabbitmq's table clone or a naive decoder chokes on.
    static let keys: [HostileCase] = [
        HostileCase("key-empty", headers: RawTable([([], .string("empty"))])),
        HostileCase("key-empty-nested", headers: RawTable(["t": .table(RawTable([([], .int64(.min))]))])),
        HostileCase("key-empty-only-attempts", headers: RawTable([([], .int64(.min)), (Array("x-dari-attempts".utf8), .int8(1))])),
        HostileCase("key-duplicate-attempts", headers: RawTable([(Array("x-dari-attempts".utf8), .int64(.min)), (Array("x-dari-attempts".utf8), .int64(.max))])),
        HostileCase("key-255", headers: RawTable([(Array(repeating: UInt8(ascii: "k"), count: 255), .string("v"))])),
        HostileCase("key-nonutf8", headers: RawTable([([0xFF, 0xC3, 0x28], .longString([0xFE, 0x0A]))])),
        HostileCase("key-newline", headers: RawTable([(Array("a\nFORGED".utf8), .string("b\nFORGED"))])),
    ]

    /// Nesting and size: 16 and more levels, 20,000 levels, a 100 KB value, every type in one table.
    static let nesting: [HostileCase] = [
        HostileCase("nest-tables-16", headers: RawTable(["n": .nestedTables(depth: 16)])),
        HostileCase("nest-tables-17", headers: RawTable(["n": .nestedTables(depth: 17)])),
        HostileCase("nest-tables-100", headers: RawTable(["n": .nestedTables(depth: 100)])),
        HostileCase("nest-arrays-100", headers: RawTable(["n": .nestedArrays(depth: 100)])),
        HostileCase("nest-attempts-deep", headers: RawTable(["x-dari-attempts": .nestedTables(depth: 50)])),
        HostileCase("big-value-100k", headers: RawTable(["big": hugeString])),
        // Three 40 KB values: the content header must fit in one frame (frame_max 131072).
        HostileCase("big-three-40k", headers: RawTable(["x-dari-attempts": fortyK, "x-delivery-count": fortyK, "traceparent": fortyK])),
        HostileCase("every-type", headers: RawTable(values.map { (key: Array($0.0.utf8), value: $0.1) })),
    ]

    /// As deep as one content frame allows (frame_max 131072). librabbitmq's
    /// table decoder is recursive (96 bytes of stack per array level in 0.11):
    /// on the worker's 1 MiB AMQP thread stack it overflowed at ~10,800 levels.
    static let deepNesting: [HostileCase] = [
        HostileCase("nest-arrays-20000", headers: RawTable(["n": .nestedArrays(depth: 20_000)])),
        HostileCase("nest-tables-15000", headers: RawTable(["n": .nestedTables(depth: 15_000)])),
        HostileCase("nest-attempts-20000", headers: RawTable(["x-dari-attempts": .nestedArrays(depth: 20_000)])),
        // The deepest one frame holds: 5 bytes per array level, 6 per table level with an empty key.
        HostileCase("nest-arrays-26000", headers: RawTable(["n": .nestedArrays(depth: 26_000)])),
        HostileCase("nest-tables-empty-keys-21500", headers: RawTable(["n": .nestedTables(depth: 21_500, key: "")])),
    ]

    static let junk: [UInt8] = Array("j\nFORGED level=critical message=\"pwned\"\r\n\u{0}\u{1B}[31m".utf8) + [0xFF, 0xC3, 0x28]

    /// Property strings with newlines, NUL, escape codes, invalid UTF-8; 255 bytes.
    /// (delivery_mode other than 1/2 and junk expirations are refused by the broker.)
    static let properties: [HostileCase] = [
        HostileCase("prop-message-id") { $0.messageId = Array("prop-message-id".utf8) + junk },
        HostileCase("prop-correlation-id") { $0.correlationId = junk },
        HostileCase("prop-reply-to") { $0.replyTo = junk },
        HostileCase("prop-reply-to-newline-only") { $0.replyTo = Array("\n".utf8) },
        HostileCase("prop-all-three") { $0.messageId = junk; $0.correlationId = junk; $0.replyTo = junk },
        HostileCase("prop-255") {
            let long = Array(repeating: UInt8(ascii: "m"), count: 255)
            $0.messageId = long; $0.correlationId = long; $0.replyTo = long
        },
        HostileCase("prop-empty-strings") { $0.messageId = []; $0.correlationId = []; $0.replyTo = [] },
        HostileCase("prop-no-delivery-mode") { $0.deliveryMode = nil },
        HostileCase("prop-expiration-60s") { $0.expiration = Array("60000".utf8) },
        HostileCase("prop-other-junk") {
            $0.contentType = junk; $0.contentEncoding = junk; $0.priority = 255; $0.timestamp = .max; $0.type = junk; $0.appId = junk
        },
    ]
}
