/// An IPv4 or IPv6 address parsed with the same strictness as glibc's `inet_pton`
/// (which is what NIO's `SocketAddress(ipAddress:)` and NIOSSL use to decide that a host
/// is an IP literal): dotted quads of decimal octets without
/// leading zeros; IPv6 as 8 groups of 1-4 hex digits, one `::` standing for at least
/// one zero group, an optional trailing dotted quad; no zone id, no brackets.
/// Pure and allocation-light: also used on every new connection (`channel.remoteAddress`).
package enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    case v4(UInt32)
    case v6(UInt64, UInt64)

    package init?(parsing text: some StringProtocol) {
        let bytes = Array(text.utf8)
        if !bytes.contains(UInt8(ascii: ":")) {
            guard let v4 = Self.parseV4(bytes[...]) else { return nil }
            self = .v4(v4)
        } else {
            guard let (hi, lo) = Self.parseV6(bytes[...]) else { return nil }
            self = .v6(hi, lo)
        }
    }

    /// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) becomes the IPv4 address it carries: the form
    /// in which a connected address is compared with the allow-list's literals.
    package var normalised: IPAddress {
        if case .v6(0, let lo) = self, lo >> 32 == 0xFFFF { return .v4(UInt32(truncatingIfNeeded: lo)) }
        return self
    }

    package var description: String {
        switch self {
        case .v4(let a):
            return "\(a >> 24).\((a >> 16) & 0xFF).\((a >> 8) & 0xFF).\(a & 0xFF)"
        case .v6(let hi, let lo):
            let groups = (0..<8).map { i -> String in
                let word = i < 4 ? hi >> (UInt64(3 - i) * 16) : lo >> (UInt64(7 - i) * 16)
                return String(word & 0xFFFF, radix: 16)
            }
            return groups.joined(separator: ":")
        }
    }

    static func parseV4(_ s: ArraySlice<UInt8>) -> UInt32? {
        // One pass over the bytes (a `split` allocated its array of parts for
        // every host the URL policy looked at, IP literal or name).
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var dots = 0
        var leadingZero = false
        for b in s {
            if b == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                value = value << 8 | octet
                dots += 1
                octet = 0
                digits = 0
                continue
            }
            guard b >= 0x30 && b <= 0x39, digits < 3 else { return nil }
            if digits == 1 && leadingZero { return nil }  // inet_pton: no leading zeros
            if digits == 0 { leadingZero = b == 0x30 }
            octet = octet * 10 + UInt32(b - 0x30)
            digits += 1
            guard octet <= 255 else { return nil }
        }
        guard dots == 3, digits > 0 else { return nil }
        return value << 8 | octet
    }

    static func parseV6(_ s: ArraySlice<UInt8>) -> (UInt64, UInt64)? {
        guard s.count <= 45 else { return nil }
        var head = s
        var tail: ArraySlice<UInt8> = []
        var compressed = false
        if let i = Self.doubleColon(in: s) {
            compressed = true
            head = s[s.startIndex..<i]
            tail = s[(i + 2)...]
            if Self.doubleColon(in: tail) != nil { return nil }
        }
        guard var headGroups = Self.groups(head, mayEndWithV4: !compressed),
              let tailGroups = Self.groups(tail, mayEndWithV4: true) else { return nil }
        if compressed {
            guard headGroups.count + tailGroups.count <= 7 else { return nil }
            headGroups += [UInt16](repeating: 0, count: 8 - headGroups.count - tailGroups.count)
        }
        let all = headGroups + tailGroups
        guard all.count == 8 else { return nil }
        let hi = all[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        let lo = all[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
        return (hi, lo)
    }

    private static func doubleColon(in s: ArraySlice<UInt8>) -> Int? {
        var i = s.startIndex
        while i + 1 < s.endIndex {
            if s[i] == UInt8(ascii: ":") && s[i + 1] == UInt8(ascii: ":") { return i }
            i += 1
        }
        return nil
    }

    /// 16-bit groups of `part` ("" = none); a trailing dotted quad counts as two groups.
    private static func groups(_ part: ArraySlice<UInt8>, mayEndWithV4: Bool) -> [UInt16]? {
        if part.isEmpty { return [] }
        let pieces = part.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        var result: [UInt16] = []
        for (index, piece) in pieces.enumerated() {
            if piece.contains(UInt8(ascii: ".")) {
                guard mayEndWithV4, index == pieces.count - 1, let v4 = parseV4(piece) else { return nil }
                result.append(UInt16(truncatingIfNeeded: v4 >> 16))
                result.append(UInt16(truncatingIfNeeded: v4))
                continue
            }
            guard (1...4).contains(piece.count) else { return nil }
            var word: UInt16 = 0
            for c in piece {
                guard let digit = hexDigit(c) else { return nil }
                word = word << 4 | digit
            }
            result.append(word)
        }
        return result
    }

    private static func hexDigit(_ c: UInt8) -> UInt16? {
        switch c {
        case 0x30...0x39: return UInt16(c - 0x30)
        case 0x41...0x46: return UInt16(c - 0x41 + 10)
        case 0x61...0x66: return UInt16(c - 0x61 + 10)
        default: return nil
        }
    }
}
