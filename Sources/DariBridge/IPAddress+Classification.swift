/// Which addresses a resume request must not reach by a host *name*: the machine itself,
/// private networks, the cloud metadata service (169.254.169.254), carrier NAT, multicast
/// and broadcast. IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`,
/// IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) are judged by that address.
extension IPAddress {
    /// nil for a public unicast address, else the name of the range it falls in.
    package var nonPublicRange: String? {
        switch self {
        case .v4(let a):
            return Self.v4Range(a)
        case .v6(let hi, let lo):
            if hi == 0 && lo == 0 { return "unspecified ::/128" }
            if hi == 0 && lo == 1 { return "loopback ::1/128" }
            let embedded = UInt32(truncatingIfNeeded: lo)
            if hi == 0 && lo >> 32 == 0xFFFF { return Self.v4Range(embedded).map { "IPv4-mapped \($0)" } }
            if hi == 0 && lo >> 32 == 0 { return Self.v4Range(embedded).map { "IPv4-compatible \($0)" } }
            if hi == 0x0064_FF9B_0000_0000 && lo >> 32 == 0 { return Self.v4Range(embedded).map { "NAT64 \($0)" } }
            let top16 = hi >> 48
            if top16 & 0xFFC0 == 0xFE80 { return "link-local fe80::/10" }
            if top16 & 0xFFC0 == 0xFEC0 { return "site-local fec0::/10" }
            if top16 & 0xFE00 == 0xFC00 { return "unique-local fc00::/7" }
            if top16 & 0xFF00 == 0xFF00 { return "multicast ff00::/8" }
            return nil
        }
    }

    static func v4Range(_ a: UInt32) -> String? {
        func within(_ base: UInt32, _ bits: UInt32) -> Bool {
            let mask: UInt32 = bits == 0 ? 0 : ~UInt32(0) << (32 - bits)
            return a & mask == base
        }
        if a == 0xFFFF_FFFF { return "broadcast 255.255.255.255" }
        if within(0x0000_0000, 8) { return "this network 0.0.0.0/8" }
        if within(0x0A00_0000, 8) { return "private 10.0.0.0/8" }
        if within(0x6440_0000, 10) { return "carrier-grade NAT 100.64.0.0/10" }
        if within(0x7F00_0000, 8) { return "loopback 127.0.0.0/8" }
        if within(0xA9FE_0000, 16) { return "link-local 169.254.0.0/16" }
        if within(0xAC10_0000, 12) { return "private 172.16.0.0/12" }
        if within(0xC0A8_0000, 16) { return "private 192.168.0.0/16" }
        if within(0xE000_0000, 4) { return "multicast 224.0.0.0/4" }
        if within(0xF000_0000, 4) { return "reserved 240.0.0.0/4" }
        return nil
    }
}
