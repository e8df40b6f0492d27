/// Reading the headers a publisher controls: every value is bounded before
/// any arithmetic, and a value out of range is ignored (or clamped, below).
extension ResumePipeline {
    /// Attempts already made through delay queues (`x-dari-attempts`): an
    /// integer from 0 on; above `maxAttempts` it is clamped to `maxAttempts`
    /// (no attempt left). Anything else (negative, not an integer, too long) is
    /// ignored: 0.
    static func priorAttempts(_ headers: [String: String], maxAttempts: Int) -> Int {
        guard let n = boundedInteger(headers[attemptsHeader]), n >= 0 else { return 0 }
        return Int(min(n, Int64(max(0, maxAttempts))))
    }

    /// `x-delivery-count` (how often the message was returned before; quorum
    /// queues set it on a redelivery). Negative or malformed values are ignored.
    static func deliveryCount(_ headers: [String: String]) -> Int? {
        guard let n = boundedInteger(headers[deliveryCountHeader]), n >= 0 else { return nil }
        return Int(clamping: n)
    }

    /// A decimal integer of at most 19 digits, else nil (never traps).
    static func boundedInteger(_ text: String?) -> Int64? {
        guard let text, !text.isEmpty, text.utf8.count <= 20 else { return nil }
        return Int64(text)
    }

    /// A W3C traceparent, passed on only when well-formed (no header injection).
    static func traceparent(_ headers: [String: String]) -> String? {
        guard let value = headers["traceparent"] else { return nil }
        let bytes = Array(value.utf8)
        guard bytes.count == 55, bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-") else { return nil }
        for (i, b) in bytes.enumerated() where i != 2 && i != 35 && i != 52 {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(b) else { return nil }
        }
        // Version ff is invalid, and so are all-zero trace and parent ids.
        if value.hasPrefix("ff") || bytes[3..<35].allSatisfy({ $0 == UInt8(ascii: "0") }) || bytes[36..<52].allSatisfy({ $0 == UInt8(ascii: "0") }) {
            return nil
        }
        return value
    }
}
