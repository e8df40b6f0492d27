/// A value of an AMQP 0-9-1 field table, of any type the wire format has.
///
/// Headers come from whoever can publish to the queue: every type and value is
/// possible, so every type is represented (none dropped, none trapping).
/// Nesting is bounded when decoding (`maxDepth`): deeper values become `.void`.
package indirect enum AMQPFieldValue: Sendable, Equatable {
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
    /// `value` / 10^`scale`.
    case decimal(scale: UInt8, value: UInt32)
    /// A long string ('S'); bytes as sent, not necessarily UTF-8.
    case longString([UInt8])
    /// A byte array ('x').
    case bytes([UInt8])
    case timestamp(UInt64)
    case array([AMQPFieldValue])
    case table(AMQPTable)
    case void

    /// Deeper nesting than this is not decoded (the value becomes `.void`).
    package static let maxDepth = 16

    /// The value as an integer, when it is one (any integer type) or a long
    /// string of at most 19 ASCII digits with an optional leading '-'.
    /// Never traps.
    package var integerValue: Int64? {
        switch self {
        case .int8(let v): return Int64(v)
        case .uint8(let v): return Int64(v)
        case .int16(let v): return Int64(v)
        case .uint16(let v): return Int64(v)
        case .int32(let v): return Int64(v)
        case .uint32(let v): return Int64(v)
        case .int64(let v): return v
        case .uint64(let v): return v <= UInt64(Int64.max) ? Int64(v) : nil
        case .longString(let b):
            guard !b.isEmpty, b.count <= 20 else { return nil }
            return Int64(String(decoding: b, as: UTF8.self))
        default: return nil
        }
    }

    /// The value as text when it is a long string that is valid UTF-8.
    package var stringValue: String? {
        guard case .longString(let b) = self else { return nil }
        return String(validating: b, as: UTF8.self)
    }
}

/// An AMQP field table: entries in wire order. Keys may repeat and may be
/// empty (a publisher can send anything); lookups take the first match.
package struct AMQPTable: Sendable, Equatable {
    package struct Entry: Sendable, Equatable {
        package var key: String
        package var value: AMQPFieldValue
        package init(key: String, value: AMQPFieldValue) {
            self.key = key
            self.value = value
        }
    }

    package var entries: [Entry]

    package init(_ entries: [Entry] = []) { self.entries = entries }

    package var isEmpty: Bool { entries.isEmpty }

    package subscript(key: String) -> AMQPFieldValue? {
        get { entries.first(where: { $0.key == key })?.value }
        set {
            entries.removeAll(where: { $0.key == key })
            if let newValue { entries.append(Entry(key: key, value: newValue)) }
        }
    }
}

extension AMQPFieldValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral {
    package init(stringLiteral value: String) { self = .longString(Array(value.utf8)) }
    package init(booleanLiteral value: Bool) { self = .bool(value) }

    /// A UTF-8 long string.
    package static func string(_ s: String) -> AMQPFieldValue { .longString(Array(s.utf8)) }
    /// A signed 64-bit integer ('l').
    package static func int(_ n: Int64) -> AMQPFieldValue { .int64(n) }
}

extension AMQPTable: ExpressibleByDictionaryLiteral {
    package init(dictionaryLiteral elements: (String, AMQPFieldValue)...) {
        entries = elements.map { Entry(key: $0.0, value: $0.1) }
    }

    /// A table of UTF-8 long strings, sorted by key.
    package init(strings: [String: String]) {
        entries = strings.sorted { $0.key < $1.key }.map { Entry(key: $0.key, value: .string($0.value)) }
    }
}

extension AMQPFieldValue {
    /// Bytes this value takes on the wire, type octet included.
    var encodedSize: Int {
        switch self {
        case .void: return 1
        case .bool, .int8, .uint8: return 2
        case .int16, .uint16: return 3
        case .int32, .uint32, .float: return 5
        case .int64, .uint64, .double, .timestamp: return 9
        case .decimal: return 6
        case .longString(let b), .bytes(let b): return 5 + b.count
        case .array(let items): return 5 + items.reduce(0) { $0 + $1.encodedSize }
        case .table(let t): return 1 + t.encodedSize
        }
    }
}

extension AMQPTable {
    /// Bytes the table takes on the wire (its 4-byte length included).
    package var encodedSize: Int {
        4 + entries.reduce(0) { $0 + 1 + min(255, $1.key.utf8.count) + $1.value.encodedSize }
    }
}
