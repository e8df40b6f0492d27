/// Values from a message (ids, reply_to, reasons that quote them) as they may
/// appear in a log line: control characters, backslashes and non-ASCII escaped
/// (a newline in a `reply_to` cannot start a forged line), length capped.
package enum LogSafe {
    package static let maxBytes = 200

    /// A value escaped with `text` when it is rendered (a log line written), not before.
    package struct Deferred: CustomStringConvertible, Sendable {
        package let raw: String
        package init(_ raw: String) { self.raw = raw }
        package var description: String { LogSafe.text(raw) }
    }

    package static func text(_ value: String, maxBytes: Int = LogSafe.maxBytes) -> String {
        var out = ""
        out.reserveCapacity(min(value.utf8.count, maxBytes) + 8)
        var count = 0
        for scalar in value.unicodeScalars {
            let piece: String
            switch scalar.value {
            case 0x5C: piece = "\\\\"
            case 0x0A: piece = "\\n"
            case 0x0D: piece = "\\r"
            case 0x09: piece = "\\t"
            case 0x20..<0x7F: piece = String(scalar)
            default: piece = "\\u{" + String(scalar.value, radix: 16) + "}"
            }
            if count + piece.utf8.count > maxBytes {
                out += "...(\(value.utf8.count) bytes)"
                return out
            }
            out += piece
            count += piece.utf8.count
        }
        return out
    }
}
