#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The `message_id` of a published outcome: a random (version 4) UUID in the usual
/// uppercase text form, as `UUID().uuidString` gives it, formatted here by hand
/// (`uuidString` goes through `snprintf`: about 6,000 instructions per id under callgrind).
package enum MessageID {
    /// From the system's random source (`getrandom(2)`). Not `UUID()`: swift-foundation
    /// opens, reads and closes /dev/urandom for each one (three system calls a message, seen
    /// with strace).
    package static func random() -> String {
        var generator = SystemRandomNumberGenerator()
        var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &uuid) { bytes in
            bytes.storeBytes(of: generator.next() as UInt64, toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: generator.next() as UInt64, toByteOffset: 8, as: UInt64.self)
            bytes[6] = (bytes[6] & 0x0F) | 0x40  // version 4
            bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        }
        return text(of: uuid)
    }

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
