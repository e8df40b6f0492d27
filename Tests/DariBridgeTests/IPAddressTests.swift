import Foundation
import Testing
@testable import DariBridge
#if canImport(Glibc)
import Glibc
#endif

/// What glibc's inet_pton (NIO's `SocketAddress(ipAddress:)`) makes of `text`, as our type.
private func pton(_ text: String) -> IPAddress? {
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 { return .v4(UInt32(bigEndian: v4.s_addr)) }
    var v6 = in6_addr()
    guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
    let bytes = withUnsafeBytes(of: v6) { Array($0) }
    let hi = bytes[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    let lo = bytes[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    return .v6(hi, lo)
}

@Suite("IPAddress: parsing and classification")
struct IPAddressTests {
    static let spellings = [
        "0.0.0.0", "127.0.0.1", "255.255.255.255", "256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "1.2.3.0",
        "0x7f.0.0.1", "127.1", "2130706433", " 1.2.3.4", "1.2.3.4 ", "1..2.3", ".1.2.3.4", "1.2.3.4.", "1.2.3.-4", "+1.2.3.4",
        "::", "::1", "1::", ":::", "::1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
        "1:2:3:4:5:6::7:8", "1::2::3", ":1::2", "1::2:", "12345::", "fe80::1", "FE80::1", "fe80::1%eth0", "[::1]",
        "::ffff:127.0.0.1", "::ffff:7f00:1", "::127.0.0.1", "::ffff:1.2.3", "::ffff:1.2.3.4.5", "::ffff:01.2.3.4",
        "1.2.3.4::", "::1.2.3.4:5", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "64:ff9b::10.0.0.1", "g::1",
        "0000:0000:0000:0000:0000:0000:0000:0001", "00000::1", "fc00::", "ff02::1", "::ffff:0:1.2.3.4", "", ":", ".",
    ]

    @Test("agrees with inet_pton", arguments: spellings)
    func agreesWithInetPton(_ text: String) {
        #expect(IPAddress(parsing: text) == pton(text), "\(text.debugDescription)")
    }

    /// The one-pass IPv4 parser against inet_pton on every string of up to 8 of
    /// the characters that matter, and random longer ones.
    @Test func ipv4ParserAgreesWithInetPtonExhaustively() {
        let alphabet: [Character] = ["0", "1", "2", "5", "9", ".", "a"]
        var texts: [String] = [""]
        var frontier: [String] = [""]
        for _ in 0..<8 {
            frontier = frontier.flatMap { t in alphabet.map { t + String($0) } }
            texts += frontier.filter { $0.filter { $0 == "." }.count == 3 }
        }
        var rng = SystemRandomNumberGenerator()
        let digits: [Character] = Array("0123456789.")
        for _ in 0..<20_000 {
            texts.append(String((0..<Int.random(in: 7...20, using: &rng)).map { _ in digits.randomElement(using: &rng)! }))
        }
        texts += ["255.255.255.255", "256.0.0.1", "1.2.3.4", "01.2.3.4", "1.2.3.04", "0.0.0.0", "1.2.3", "1.2.3.4.5",
                  "1..2.3", ".1.2.3", "1.2.3.", "1234.1.1.1", "999.1.1.1", "00.1.1.1", "1.2.3.4 "]
        for text in texts {
            var v4 = in_addr()
            let expected: UInt32? = inet_pton(AF_INET, text, &v4) == 1 ? UInt32(bigEndian: v4.s_addr) : nil
            #expect(IPAddress.parseV4(Array(text.utf8)[...]) == expected, "\(text.debugDescription)")
        }
    }

    @Test func normalisedTurnsMappedIntoIPv4Only() throws {
        #expect(try #require(IPAddress(parsing: "::ffff:127.0.0.1")).normalised == .v4(0x7F00_0001))
        #expect(try #require(IPAddress(parsing: "::ffff:7f00:1")).normalised == .v4(0x7F00_0001))
        #expect(try #require(IPAddress(parsing: "::127.0.0.1")).normalised == IPAddress(parsing: "::7f00:1"))
        #expect(try #require(IPAddress(parsing: "10.0.0.1")).normalised == .v4(0x0A00_0001))
        #expect(IPAddress.v6(0, 1).description == "0:0:0:0:0:0:0:1")
        #expect(IPAddress.v4(0xC0A8_0001).description == "192.168.0.1")
    }

    /// (address, its range or nil for public) — every range with the addresses just inside and just outside it.
    static let classified: [(String, String?)] = [
        ("0.0.0.0", "this network 0.0.0.0/8"), ("0.255.255.255", "this network 0.0.0.0/8"), ("1.0.0.0", nil),
        ("9.255.255.255", nil), ("10.0.0.0", "private 10.0.0.0/8"), ("10.255.255.255", "private 10.0.0.0/8"), ("11.0.0.0", nil),
        ("100.63.255.255", nil), ("100.64.0.0", "carrier-grade NAT 100.64.0.0/10"),
        ("100.127.255.255", "carrier-grade NAT 100.64.0.0/10"), ("100.128.0.0", nil),
        ("126.255.255.255", nil), ("127.0.0.0", "loopback 127.0.0.0/8"), ("127.0.0.1", "loopback 127.0.0.0/8"),
        ("127.255.255.255", "loopback 127.0.0.0/8"), ("128.0.0.0", nil),
        ("169.253.255.255", nil), ("169.254.0.0", "link-local 169.254.0.0/16"), ("169.254.169.254", "link-local 169.254.0.0/16"),
        ("169.254.255.255", "link-local 169.254.0.0/16"), ("169.255.0.0", nil),
        ("172.15.255.255", nil), ("172.16.0.0", "private 172.16.0.0/12"), ("172.31.255.255", "private 172.16.0.0/12"), ("172.32.0.0", nil),
        ("192.167.255.255", nil), ("192.168.0.0", "private 192.168.0.0/16"), ("192.168.255.255", "private 192.168.0.0/16"),
        ("192.169.0.0", nil), ("8.8.8.8", nil), ("223.255.255.255", nil), ("224.0.0.0", "multicast 224.0.0.0/4"),
        ("239.255.255.255", "multicast 224.0.0.0/4"), ("240.0.0.0", "reserved 240.0.0.0/4"),
        ("255.255.255.254", "reserved 240.0.0.0/4"), ("255.255.255.255", "broadcast 255.255.255.255"),
        ("::", "unspecified ::/128"), ("::1", "loopback ::1/128"), ("::2", "IPv4-compatible this network 0.0.0.0/8"),
        ("::ffff:127.0.0.1", "IPv4-mapped loopback 127.0.0.0/8"), ("::ffff:169.254.169.254", "IPv4-mapped link-local 169.254.0.0/16"),
        ("::ffff:10.1.2.3", "IPv4-mapped private 10.0.0.0/8"), ("::ffff:0.0.0.0", "IPv4-mapped this network 0.0.0.0/8"),
        ("::ffff:255.255.255.255", "IPv4-mapped broadcast 255.255.255.255"), ("::ffff:8.8.8.8", nil),
        ("::127.0.0.1", "IPv4-compatible loopback 127.0.0.0/8"), ("::192.168.1.1", "IPv4-compatible private 192.168.0.0/16"),
        ("::8.8.8.8", nil), ("64:ff9b::127.0.0.1", "NAT64 loopback 127.0.0.0/8"), ("64:ff9b::8.8.8.8", nil),
        ("::fffe:127.0.0.1", nil), ("::1:ffff:127.0.0.1", nil),
        ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", nil), ("fe80::", "link-local fe80::/10"), ("fe80::1", "link-local fe80::/10"),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local fe80::/10"), ("fec0::", "site-local fec0::/10"),
        ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", nil), ("fc00::", "unique-local fc00::/7"),
        ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique-local fc00::/7"), ("fe00::", nil),
        ("ff00::", "multicast ff00::/8"), ("ff02::1", "multicast ff00::/8"), ("2001:4860:4860::8888", nil), ("2606:4700::1", nil),
    ]

    @Test("classified", arguments: classified)
    func classifies(_ text: String, _ range: String?) throws {
        let address = try #require(IPAddress(parsing: text), "\(text)")
        #expect(address.nonPublicRange == range, "\(text)")
    }

    @Test func policyAcceptsAPrivateAddressOnlyWhenWrittenOrAllowed() throws {
        let strict = URLPolicy(allowedHosts: ["dari.internal", "10.0.0.5:8443", "[fd00::1]", "[::ffff:192.168.1.9]"],
                               allowedPathPrefixes: ["/"], allowInsecureHTTP: false)
        let open = URLPolicy(allowedHosts: ["dari.internal"], allowedPathPrefixes: ["/"], allowInsecureHTTP: false,
                             allowPrivateAddresses: true)
        func address(_ s: String) throws -> IPAddress { try #require(IPAddress(parsing: s)) }
        #expect(strict.connectionRefusal(to: try address("8.8.8.8")) == nil)
        #expect(strict.connectionRefusal(to: try address("10.0.0.5")) == nil)
        #expect(strict.connectionRefusal(to: try address("::ffff:10.0.0.5")) == nil)  // the same address, mapped
        #expect(strict.connectionRefusal(to: try address("fd00::1")) == nil)
        #expect(strict.connectionRefusal(to: try address("192.168.1.9")) == nil)
        #expect(strict.connectionRefusal(to: try address("10.0.0.6")) != nil)
        #expect(strict.connectionRefusal(to: try address("fd00::2")) != nil)
        #expect(strict.connectionRefusal(to: try address("169.254.169.254"))?.contains("link-local") == true)
        #expect(strict.connectionRefusal(to: try address("::ffff:127.0.0.1"))?.contains("loopback") == true)
        #expect(open.connectionRefusal(to: try address("127.0.0.1")) == nil)
        #expect(open.connectionRefusal(to: try address("169.254.169.254")) == nil)
    }
}
