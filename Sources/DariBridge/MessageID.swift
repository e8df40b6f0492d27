#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The `message_id` of a published outcome: a random (version 4) UUID in the usual
/// uppercase text form, as `UUID().uuidString` gives it, formatted here by hand
/// (`uuidString` goes through `snprintf`: about 6,000 instructions per id under callgrind).
package enum MessageID {
    package static func random() -> String { text(of: UUID().uuid) }

    /// `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX`, uppercase hex.
    package static func text(of uuid: uuid_t) -> String {
        let hex: StaticString = "0123456789ABCDEF"
        return withUnsafeBytes(of: uuid) { bytes in
            String(unsafeUninitializedCapacity: 36) { out in
                hex.withUTF8Buffer { digits in
                    var o = 0
                    for i in 0..<16 {
                        if i == 4 || i == 6 || i == 8 || i == 10 {
                            out[o] = UInt8(ascii: "-")
                            o += 1
                        }
                        out[o] = digits[Int(bytes[i] >> 4)]
                        out[o + 1] = digits[Int(bytes[i] & 0x0F)]
                        o += 2
                    }
                    return o
                }
            }
        }
    }
}
