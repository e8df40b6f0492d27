import Crypto

/// Dari's webhook signature: the hex HMAC-SHA256, under the webhook secret, of
/// `"{X-Webhook-Timestamp}.{raw body}"`, sent in `X-Webhook-Signature`, with
/// or without a `sha256=` prefix.
package enum WebhookSignature {
    /// The HMAC bytes of `"{timestamp}.{body}"` under `secret`.
    package static func mac(timestamp: String, body: [UInt8], secret: [UInt8]) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret))
        hmac.update(data: Array(timestamp.utf8))
        hmac.update(data: [UInt8(ascii: ".")])
        hmac.update(data: body)
        return Array(hmac.finalize())
    }

    /// The header value Dari would send (lower-case hex, no prefix): for tests,
    /// the load client and the example.
    package static func sign(timestamp: String, body: [UInt8], secret: String) -> String {
        hex(mac(timestamp: timestamp, body: body, secret: Array(secret.utf8)))
    }

    /// Whether `signature` is the HMAC of `"{timestamp}.{body}"` under one of
    /// `secrets`. Constant-time per secret (swift-crypto's comparison of a MAC
    /// with bytes); every secret is tried, so the time does not tell which matched.
    package static func isValid(signature: [UInt8], timestamp: String, body: [UInt8], secrets: [[UInt8]]) -> Bool {
        var valid = false
        for secret in secrets {
            var hmac = HMAC<SHA256>(key: SymmetricKey(data: secret))
            hmac.update(data: Array(timestamp.utf8))
            hmac.update(data: [UInt8(ascii: ".")])
            hmac.update(data: body)
            if hmac.finalize() == signature { valid = true }
        }
        return valid
    }

    /// The 32 bytes of a header value: optional `sha256=` (any case), then 64
    /// hex digits (any case); ASCII white space around it is ignored. nil for
    /// anything else.
    package static func decode(_ header: String) -> [UInt8]? {
        var digits = header.asciiTrimmedBytes
        if digits.count > 7, String(decoding: digits.prefix(7), as: UTF8.self).lowercased() == "sha256=" { digits.removeFirst(7) }
        guard digits.count == 64 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(32)
        var i = 0
        while i < 64 {
            guard let hi = nibble(digits[i]), let lo = nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    package static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
