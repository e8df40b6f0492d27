import CRabbitMQ
import Glibc

// Helpers that move data between Swift and librabbitmq's structs. Everything a
// librabbitmq call points at must stay alive for that call only, so outgoing
// strings and tables are allocated in a `CArena` that is freed right after.

// Method ids (the C macros are casts, which Swift does not import).
enum Method {
    static let connectionClose: amqp_method_number_t = 0x000A_0032
    static let connectionCloseOk: amqp_method_number_t = 0x000A_0033
    static let connectionBlocked: amqp_method_number_t = 0x000A_003C
    static let connectionUnblocked: amqp_method_number_t = 0x000A_003D
    static let channelClose: amqp_method_number_t = 0x0014_0028
    static let channelCloseOk: amqp_method_number_t = 0x0014_0029
    static let basicCancel: amqp_method_number_t = 0x003C_001E
    static let basicReturn: amqp_method_number_t = 0x003C_0032
    static let basicAck: amqp_method_number_t = 0x003C_0050
    static let basicNack: amqp_method_number_t = 0x003C_0078
}

enum Flag {
    static let contentType: amqp_flags_t = 1 << 15
    static let headers: amqp_flags_t = 1 << 13
    static let deliveryMode: amqp_flags_t = 1 << 12
    static let correlationId: amqp_flags_t = 1 << 10
    static let replyTo: amqp_flags_t = 1 << 9
    static let expiration: amqp_flags_t = 1 << 8
    static let messageId: amqp_flags_t = 1 << 7
    static let timestamp: amqp_flags_t = 1 << 6
}

extension amqp_bytes_t {
    var swiftString: String {
        guard len > 0, let bytes else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: len), as: UTF8.self)
    }
    var swiftBytes: [UInt8] {
        guard len > 0, let bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: bytes, count: len))
    }
}

/// Owns C memory for the duration of one librabbitmq call.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    func bytes(_ string: String) -> amqp_bytes_t {
        var utf8 = Array(string.utf8)
        return bytes(&utf8)
    }

    func bytes(_ array: inout [UInt8]) -> amqp_bytes_t {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(array.count, 1), alignment: 1)
        allocations.append(p)
        array.withUnsafeBytes { src in
            if let base = src.baseAddress { p.copyMemory(from: base, byteCount: src.count) }
        }
        return amqp_bytes_t(len: array.count, bytes: p)
    }

    enum Field {
        case string(String)
        case bool(Bool)
        case int(Int64)
        case table([(String, Field)])
    }

    func table(_ entries: [(String, Field)]) -> amqp_table_t {
        guard !entries.isEmpty else { return amqp_table_t(num_entries: 0, entries: nil) }
        let p = UnsafeMutablePointer<amqp_table_entry_t>.allocate(capacity: entries.count)
        allocations.append(UnsafeMutableRawPointer(p))
        for (i, (key, field)) in entries.enumerated() {
            var value = amqp_field_value_t()
            switch field {
            case .string(let s):
                value.kind = UInt8(ascii: "S")
                value.value.bytes = bytes(s)
            case .bool(let b):
                value.kind = UInt8(ascii: "t")
                value.value.boolean = b ? 1 : 0
            case .int(let n):
                value.kind = UInt8(ascii: "l")
                value.value.i64 = n
            case .table(let inner):
                value.kind = UInt8(ascii: "F")
                value.value.table = table(inner)
            }
            (p + i).initialize(to: amqp_table_entry_t(key: bytes(key), value: value))
        }
        return amqp_table_t(num_entries: Int32(entries.count), entries: p)
    }

    func properties(_ props: AMQPProperties) -> amqp_basic_properties_t {
        var c = amqp_basic_properties_t()
        var flags: amqp_flags_t = 0
        if let v = props.contentType { c.content_type = bytes(v); flags |= Flag.contentType }
        if let v = props.messageId { c.message_id = bytes(v); flags |= Flag.messageId }
        if let v = props.correlationId { c.correlation_id = bytes(v); flags |= Flag.correlationId }
        if let v = props.replyTo { c.reply_to = bytes(v); flags |= Flag.replyTo }
        if let v = props.expiration { c.expiration = bytes(v); flags |= Flag.expiration }
        if let v = props.timestamp { c.timestamp = v; flags |= Flag.timestamp }
        c.delivery_mode = props.persistent ? 2 : 1
        flags |= Flag.deliveryMode
        if !props.headers.isEmpty {
            c.headers = table(props.headers.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })
            flags |= Flag.headers
        }
        c._flags = flags
        return c
    }

    deinit {
        for p in allocations { p.deallocate() }
    }
}

extension AMQPProperties {
    /// Copies the properties out of librabbitmq memory.
    init(_ c: amqp_basic_properties_t) {
        let f = c._flags
        self.init(
            contentType: f & Flag.contentType != 0 ? c.content_type.swiftString : nil,
            messageId: f & Flag.messageId != 0 ? c.message_id.swiftString : nil,
            correlationId: f & Flag.correlationId != 0 ? c.correlation_id.swiftString : nil,
            replyTo: f & Flag.replyTo != 0 ? c.reply_to.swiftString : nil,
            persistent: f & Flag.deliveryMode != 0 && c.delivery_mode == 2,
            expiration: f & Flag.expiration != 0 ? c.expiration.swiftString : nil,
            timestamp: f & Flag.timestamp != 0 ? c.timestamp : nil,
            headers: f & Flag.headers != 0 ? Self.headers(c.headers) : [:]
        )
    }

    private static func headers(_ table: amqp_table_t) -> [String: String] {
        var out: [String: String] = [:]
        guard table.num_entries > 0, let entries = table.entries else { return out }
        for i in 0..<Int(table.num_entries) {
            let e = entries[i]
            let key = e.key.swiftString
            let v = e.value
            switch v.kind {
            case UInt8(ascii: "S"), UInt8(ascii: "x"): out[key] = v.value.bytes.swiftString
            case UInt8(ascii: "b"): out[key] = String(v.value.i8)
            case UInt8(ascii: "B"): out[key] = String(v.value.u8)
            case UInt8(ascii: "s"): out[key] = String(v.value.i16)
            case UInt8(ascii: "u"): out[key] = String(v.value.u16)
            case UInt8(ascii: "I"): out[key] = String(v.value.i32)
            case UInt8(ascii: "i"): out[key] = String(v.value.u32)
            case UInt8(ascii: "l"): out[key] = String(v.value.i64)
            case UInt8(ascii: "L"): out[key] = String(v.value.u64)
            case UInt8(ascii: "t"): out[key] = v.value.boolean != 0 ? "true" : "false"
            default: continue
            }
        }
        return out
    }
}
