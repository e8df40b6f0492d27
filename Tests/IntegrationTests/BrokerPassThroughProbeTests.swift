import Foundation
import RabbitMQ
import Testing

/// What RabbitMQ passes through from a publisher: each hostile property list is
/// published with the raw publisher to a fresh queue and read back with
/// basic.get. The expectations are the findings (RabbitMQ 3.10.8); if a broker
/// version changes them, this test says which, and the worker's hostile-input
/// tests (HostilePropertiesTests) must cover the new pass-throughs.
///
/// Findings, RabbitMQ 3.10.8 (classic queue, frame_max 131072):
/// - The broker decodes the whole property list at basic.publish (the header
///   table too, recursively), but delivers the ORIGINAL bytes: every property
///   list it accepts arrives byte for byte as published.
/// - Delivered unchanged: an EMPTY header key, duplicate keys, 255-byte keys,
///   non-UTF-8 keys and long strings, every field kind t b B s u I i l L f d D
///   S x A T F V with extreme values (also 'L' u64, which the 0-9-1 errata does
///   not list), 100 nested tables, 20,000 nested arrays (100 KB), a 100 KB long
///   string value, message_id / correlation_id / reply_to / type / app_id /
///   content_type with newlines, CR, NUL, ESC and invalid UTF-8 or 255 bytes,
///   priority 255, timestamp UInt64.max, expiration "60000".
/// - Refused with connection.close 541 INTERNAL_ERROR (the whole connection
///   dies, other channels too): an unknown field kind ('Z'), a truncated entry,
///   a table length past the end of the property list, and float/double NaN or
///   infinity (Erlang cannot represent them, so the decoder fails).
/// - Refused with channel.close 406 PRECONDITION_FAILED: delivery_mode other
///   than 1 or 2 ("invalid message: {delivery_mode_unknown,0}"), expiration
///   that is not a non-negative integer ("no_integer", "value_negative"; 20
///   digits: "value_too_large"), user_id other than the login user.
/// - A content header frame over frame_max: connection.close 501
///   "frame_too_large" (the raw publisher refuses to send one).
/// - expiration "0": confirmed, and expired at once (never delivered).
/// So a consumer must survive everything in the "delivered" list; nothing
/// with an unknown kind, a truncated table or a NaN ever reaches it.
@Suite(.serialized) struct BrokerPassThroughProbeTests {
    enum Finding: Equatable, CustomStringConvertible {
        /// Delivered with the property bytes exactly as published.
        case unchanged
        /// Delivered, with different property bytes.
        case changed
        /// Confirmed but not delivered (e.g. expired at once).
        case dropped
        case channelError(UInt16)
        case connectionError(UInt16)

        var description: String {
            switch self {
            case .unchanged: return "delivered unchanged"
            case .changed: return "delivered changed"
            case .dropped: return "accepted, not delivered"
            case .channelError(let c): return "refused: channel error \(c)"
            case .connectionError(let c): return "refused: connection error \(c)"
            }
        }
    }

    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var properties: RawProperties
        var expected: Finding
        var description: String { name }
    }

    static func headers(_ t: RawTable) -> RawProperties { RawProperties(messageId: "probe", headers: t) }
    static func headerBytes(_ b: [UInt8]) -> RawProperties {
        var p = RawProperties(messageId: "probe")
        p.headersBytes = b
        return p
    }
    static func with(_ change: (inout RawProperties) -> Void) -> RawProperties {
        var p = RawProperties(messageId: "probe")
        change(&p)
        return p
    }

    /// A table `{"t": <kind byte + payload>}` as raw bytes.
    static func oneRawEntry(kind: Character, payload: [UInt8]) -> RawProperties {
        headers(RawTable([(Array("t".utf8), .raw(kind: UInt8(ascii: kind.unicodeScalars.first ?? "?"), payload: payload))]))
    }

    static let junk: [UInt8] = Array("a\nb\r\n\u{0}c".utf8) + [0xFF, 0xFE, 0xC3, 0x28]

    static let cases: [Case] = [
        Case(name: "every field type, min and max", properties: headers(RawTable([
            (Array("t".utf8), .bool(true)), (Array("b".utf8), .int8(.min)), (Array("B".utf8), .uint8(.max)),
            (Array("s".utf8), .int16(.min)), (Array("u".utf8), .uint16(.max)), (Array("I".utf8), .int32(.min)),
            (Array("i".utf8), .uint32(.max)), (Array("l".utf8), .int64(.min)), (Array("L".utf8), .uint64(.max)), (Array("f".utf8), .float(-.greatestFiniteMagnitude)),
            (Array("d".utf8), .double(.leastNonzeroMagnitude)), (Array("D".utf8), .decimal(scale: 255, value: .max)),
            (Array("S".utf8), .string("s")), (Array("x".utf8), .bytes([0, 1, 255])), (Array("A".utf8), .array([.int64(.max), .void, .array([])])),
            (Array("T".utf8), .timestamp(.max)), (Array("F".utf8), .table(RawTable(["in": .void]))), (Array("V".utf8), .void),
        ])), expected: .unchanged),
        Case(name: "uint64 'L'", properties: headers(RawTable(["x-dari-attempts": .uint64(.max)])), expected: .unchanged),
        Case(name: "float NaN", properties: headers(RawTable(["f": .float(.nan)])), expected: .connectionError(541)),
        Case(name: "float infinity", properties: headers(RawTable(["f": .float(.infinity)])), expected: .connectionError(541)),
        Case(name: "double NaN", properties: headers(RawTable(["d": .double(.nan)])), expected: .connectionError(541)),
        Case(name: "double -infinity", properties: headers(RawTable(["d": .double(-.infinity)])), expected: .connectionError(541)),
        Case(name: "float subnormal", properties: headers(RawTable(["f": .float(.leastNonzeroMagnitude)])), expected: .unchanged),
        Case(name: "empty key", properties: headers(RawTable([([], .string("empty"))])), expected: .unchanged),
        Case(name: "duplicate keys", properties: headers(RawTable([(Array("k".utf8), .string("a")), (Array("k".utf8), .int32(2))])), expected: .unchanged),
        Case(name: "unknown field kind 'Z'", properties: oneRawEntry(kind: "Z", payload: [1, 2, 3, 4]), expected: .connectionError(541)),
        Case(name: "truncated entry inside the table", properties: headerBytes([0, 0, 0, 6, 3] + Array("abc".utf8) + [UInt8(ascii: "S"), 0]), expected: .connectionError(541)),
        Case(name: "table length past the property list", properties: headerBytes([0, 0, 1, 0, 1, UInt8(ascii: "k"), UInt8(ascii: "V")]), expected: .connectionError(541)),
        Case(name: "100 nested tables", properties: headers(RawTable([(Array("n".utf8), .nestedTables(depth: 100))])), expected: .unchanged),
        Case(name: "20,000 nested arrays", properties: headers(RawTable([(Array("n".utf8), .nestedArrays(depth: 20_000))])), expected: .unchanged),
        Case(name: "15,000 nested tables", properties: headers(RawTable([(Array("n".utf8), .nestedTables(depth: 15_000))])), expected: .unchanged),
        Case(name: "100 KB header value", properties: headers(RawTable(["big": .longString(Array(repeating: UInt8(ascii: "v"), count: 100_000))])), expected: .unchanged),
        Case(name: "255-byte key", properties: headers(RawTable([(Array(repeating: UInt8(ascii: "k"), count: 255), .void)])), expected: .unchanged),
        Case(name: "non-UTF-8 key and string", properties: headers(RawTable([([0xFF, 0xC3, 0x28], .longString([0xFE, 0xFF, 0x00, 0x0A]))])), expected: .unchanged),
        Case(name: "message_id, correlation_id, reply_to with newline, NUL, invalid UTF-8", properties: with {
            $0.messageId = junk; $0.correlationId = junk; $0.replyTo = junk
        }, expected: .unchanged),
        Case(name: "255-byte message_id, correlation_id, reply_to", properties: with {
            let long = Array(repeating: UInt8(ascii: "m"), count: 255)
            $0.messageId = long; $0.correlationId = long; $0.replyTo = long
        }, expected: .unchanged),
        Case(name: "delivery_mode 0", properties: with { $0.deliveryMode = 0 }, expected: .channelError(406)),
        Case(name: "delivery_mode 3", properties: with { $0.deliveryMode = 3 }, expected: .channelError(406)),
        Case(name: "delivery_mode 255", properties: with { $0.deliveryMode = 255 }, expected: .channelError(406)),
        Case(name: "expiration 'abc'", properties: with { $0.expiration = Array("abc".utf8) }, expected: .channelError(406)),
        Case(name: "expiration '-1'", properties: with { $0.expiration = Array("-1".utf8) }, expected: .channelError(406)),
        Case(name: "expiration 20 digits", properties: with { $0.expiration = Array("99999999999999999999".utf8) }, expected: .channelError(406)),
        Case(name: "expiration '0'", properties: with { $0.expiration = Array("0".utf8) }, expected: .dropped),
        Case(name: "every other property set to junk", properties: with {
            $0.contentType = junk; $0.contentEncoding = junk; $0.priority = 255; $0.timestamp = .max
            $0.type = junk; $0.appId = junk
        }, expected: .unchanged),
        Case(name: "expiration '60000'", properties: with { $0.expiration = Array("60000".utf8) }, expected: .unchanged),
        Case(name: "user_id that is the user", properties: with { $0.userId = Array("guest".utf8) }, expected: .unchanged),
        Case(name: "user_id that is not the user", properties: with { $0.userId = Array("admin".utf8) }, expected: .channelError(406)),
    ]

    static var port: Int {
        get throws { try Harness.brokerURL.port }
    }

    @Test(arguments: cases)
    func brokerHandlesHostileProperties(_ c: Case) async throws {
        let port = try Self.port
        let publisher = try RawAMQPPublisher(port: port)
        defer { publisher.close() }
        let queue = "probe.\(UUID().uuidString.prefix(8))"
        try publisher.declareQueue(queue)
        let (flags, bytes) = c.properties.encoded()
        let finding: Finding
        switch try publisher.publish(routingKey: queue, propertyFlags: flags, propertyBytes: bytes, body: Array("{}".utf8)) {
        case .acked, .nacked, .returned:
            // Delivery to a queue is asynchronous to the confirm only for
            // mirrored queues; a classic queue has it once confirmed.
            if let got = try publisher.get(queue: queue) {
                finding = got.flags == flags && got.propertyBytes == bytes ? .unchanged : .changed
            } else {
                finding = .dropped
            }
            try publisher.deleteQueue(queue)
        case .channelClosed(let code, let text):
            print("PROBE \(c.name): channel closed \(code) \(text)")
            finding = .channelError(code)
        case .connectionClosed(let code, let text):
            print("PROBE \(c.name): connection closed \(code) \(text)")
            finding = .connectionError(code)
        }
        print("PROBE \(c.name): \(finding)")
        #expect(finding == c.expected, "\(c.name): \(finding)")
    }
}
