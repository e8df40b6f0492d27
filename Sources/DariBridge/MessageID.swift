import Synchronization
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The `message_id` of a published outcome: an id in the text form of a version-4 UUID, the
/// uppercase form `UUID().uuidString` gives, formatted here by hand
/// (`uuidString` goes through `snprintf`: about 6,000 instructions per id under callgrind).
package enum MessageID {
    /// Unique without a system call per id: a per-process counter through a bijective mix
    /// (SplitMix64's finaliser) keyed by 128 random bits drawn once per process, with the
    /// version-4 and variant bits set. Unique within a process (the mix is a bijection of the
    /// counter) and, with the random key, across processes and restarts. An id, not a
    /// secret. (`UUID()` opens, reads and closes /dev/urandom for each one, three system
    /// calls a message, and `SystemRandomNumberGenerator` makes two `getrandom` calls.)
    package static func random() -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).newValue
        let high = mix(n ^ keys.0), low = mix(n &+ keys.1)
        var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &uuid) { bytes in
            bytes.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
            bytes.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
            bytes[6] = (bytes[6] & 0x0F) | 0x40  // version 4
            bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        }
        return text(of: uuid)
    }

    private static let counter = Atomic<UInt64>(0)
    private static let keys: (UInt64, UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), generator.next())
    }()

    /// SplitMix64's finaliser: a bijection of UInt64 that spreads every input bit.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
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
