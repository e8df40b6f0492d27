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
    static let basicDeliver: amqp_method_number_t = 0x003C_003C
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
///
/// Bytes go into one block allocated on first use (a publish's exchange,
/// routing key and properties usually fit in it: one allocation instead of
/// two per string); larger ones, and tables, get allocations of their own.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []
    private var block: UnsafeMutableRawPointer? = nil
    private var used = 0
    private static let blockSize = 1024

    /// `count` bytes that live as long as the arena.
    private func reserve(_ count: Int) -> UnsafeMutableRawPointer {
        if count <= Self.blockSize {
            if block == nil { block = UnsafeMutableRawPointer.allocate(byteCount: Self.blockSize, alignment: 8) }
            if used + count <= Self.blockSize {
                defer { used += count }
                return block! + used
            }
        }
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 1)
        allocations.append(p)
        return p
    }

    private func copy(_ src: UnsafeRawBufferPointer) -> amqp_bytes_t {
        let p = reserve(src.count)
        if let base = src.baseAddress, src.count > 0 { p.copyMemory(from: base, byteCount: src.count) }
        return amqp_bytes_t(len: src.count, bytes: p)
    }

    func bytes(_ string: String) -> amqp_bytes_t {
        var string = string
        return string.withUTF8 { copy(UnsafeRawBufferPointer($0)) }
    }

    func bytes(_ array: inout [UInt8]) -> amqp_bytes_t {
        array.withUnsafeBytes { copy($0) }
    }

    /// Encodes a field table for a librabbitmq call (keys longer than 255
    /// bytes are cut: a short string cannot hold more).
    func table(_ table: AMQPTable) -> amqp_table_t {
        guard !table.entries.isEmpty else { return amqp_table_t(num_entries: 0, entries: nil) }
        let p = UnsafeMutablePointer<amqp_table_entry_t>.allocate(capacity: table.entries.count)
        allocations.append(UnsafeMutableRawPointer(p))
        for (i, entry) in table.entries.enumerated() {
            var key = Array(entry.key.utf8.prefix(255))
            (p + i).initialize(to: amqp_table_entry_t(key: bytes(&key), value: field(entry.value)))
        }
        return amqp_table_t(num_entries: Int32(table.entries.count), entries: p)
    }

    func field(_ v: AMQPFieldValue) -> amqp_field_value_t {
        var value = amqp_field_value_t()
        func kind(_ c: Character) -> UInt8 { c.asciiValue ?? 0 }
        switch v {
        case .bool(let b): value.kind = kind("t"); value.value.boolean = b ? 1 : 0
        case .int8(let n): value.kind = kind("b"); value.value.i8 = n
        case .uint8(let n): value.kind = kind("B"); value.value.u8 = n
        case .int16(let n): value.kind = kind("s"); value.value.i16 = n
        case .uint16(let n): value.kind = kind("u"); value.value.u16 = n
        case .int32(let n): value.kind = kind("I"); value.value.i32 = n
        case .uint32(let n): value.kind = kind("i"); value.value.u32 = n
        case .int64(let n): value.kind = kind("l"); value.value.i64 = n
        case .uint64(let n): value.kind = kind("L"); value.value.u64 = n
        case .float(let f): value.kind = kind("f"); value.value.f32 = f
        case .double(let d): value.kind = kind("d"); value.value.f64 = d
        case .decimal(let scale, let n): value.kind = kind("D"); value.value.decimal = amqp_decimal_t(decimals: scale, value: n)
        case .longString(var b): value.kind = kind("S"); value.value.bytes = bytes(&b)
        case .bytes(var b): value.kind = kind("x"); value.value.bytes = bytes(&b)
        case .timestamp(let t): value.kind = kind("T"); value.value.u64 = t
        case .table(let t): value.kind = kind("F"); value.value.table = table(t)
        case .array(let items):
            value.kind = kind("A")
            if items.isEmpty {
                value.value.array = amqp_array_t(num_entries: 0, entries: nil)
            } else {
                let p = UnsafeMutablePointer<amqp_field_value_t>.allocate(capacity: items.count)
                allocations.append(UnsafeMutableRawPointer(p))
                for (i, item) in items.enumerated() { (p + i).initialize(to: field(item)) }
                value.value.array = amqp_array_t(num_entries: Int32(items.count), entries: p)
            }
        case .void: value.kind = kind("V")
        }
        return value
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
            c.headers = table(props.headers)
            flags |= Flag.headers
        }
        c._flags = flags
        return c
    }

    deinit {
        for p in allocations { p.deallocate() }
        block?.deallocate()
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
            headers: f & Flag.headers != 0 ? Self.table(c.headers) : AMQPTable()
        )
    }

    /// Copies a field table out of librabbitmq memory, every type kept.
    /// Nesting deeper than `AMQPFieldValue.maxDepth` becomes `.void` (bounded
    /// recursion on the IO thread whatever a publisher nests).
    static func table(_ table: amqp_table_t, depth: Int = 0) -> AMQPTable {
        guard table.num_entries > 0, let entries = table.entries else { return AMQPTable() }
        var out: [AMQPTable.Entry] = []
        out.reserveCapacity(Int(table.num_entries))
        for i in 0..<Int(table.num_entries) {
            let e = entries[i]
            out.append(AMQPTable.Entry(key: e.key.swiftString, value: value(e.value, depth: depth + 1)))
        }
        return AMQPTable(out)
    }

    static func value(_ v: amqp_field_value_t, depth: Int) -> AMQPFieldValue {
        switch v.kind {
        case UInt8(ascii: "t"): return .bool(v.value.boolean != 0)
        case UInt8(ascii: "b"): return .int8(v.value.i8)
        case UInt8(ascii: "B"): return .uint8(v.value.u8)
        case UInt8(ascii: "s"): return .int16(v.value.i16)
        case UInt8(ascii: "u"): return .uint16(v.value.u16)
        case UInt8(ascii: "I"): return .int32(v.value.i32)
        case UInt8(ascii: "i"): return .uint32(v.value.u32)
        case UInt8(ascii: "l"): return .int64(v.value.i64)
        case UInt8(ascii: "L"): return .uint64(v.value.u64)
        case UInt8(ascii: "f"): return .float(v.value.f32)
        case UInt8(ascii: "d"): return .double(v.value.f64)
        case UInt8(ascii: "D"): return .decimal(scale: v.value.decimal.decimals, value: v.value.decimal.value)
        case UInt8(ascii: "S"): return .longString(v.value.bytes.swiftBytes)
        case UInt8(ascii: "x"): return .bytes(v.value.bytes.swiftBytes)
        case UInt8(ascii: "T"): return .timestamp(v.value.u64)
        case UInt8(ascii: "F"):
            guard depth < AMQPFieldValue.maxDepth else { return .void }
            return .table(table(v.value.table, depth: depth))
        case UInt8(ascii: "A"):
            guard depth < AMQPFieldValue.maxDepth else { return .void }
            let array = v.value.array
            guard array.num_entries > 0, let items = array.entries else { return .array([]) }
            return .array((0..<Int(array.num_entries)).map { value(items[$0], depth: depth + 1) })
        default: return .void
        }
    }
}
