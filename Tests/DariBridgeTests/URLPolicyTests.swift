import Foundation
import Testing
@testable import DariBridge

@Suite("URLPolicy")
struct URLPolicyTests {
    static let product = URLPolicy(
        allowedHosts: URLPolicy.defaultAllowedHosts,
        allowedPathPrefixes: URLPolicy.defaultAllowedPathPrefixes,
        allowInsecureHTTP: false
    )

    static let allowed: [String] = [
        "https://api.usedari.com/public/send-user-signal/abc123",
        "https://api.usedari.com/send-user-signal/abc123",
        "https://api.usedari.com/public/send-user-signal/abc123?token=x&y=1",
        "https://api.usedari.com/public/send-user-signal/abc?next=/a/../b%2f",
        "https://api.usedari.com/public/send-user-signal/abc?",
        "HTTPS://API.UseDari.COM/public/send-user-signal/abc",
        "hTtPs://api.usedari.com/public/send-user-signal/abc",
        "https://api.usedari.com:443/public/send-user-signal/abc",
        "https://api.usedari.com:00443/public/send-user-signal/abc",
        "https://api.usedari.com/public/send-user-signal/",
        "https://api.usedari.com/public/send-user-signal/a%20b",
        "https://api.usedari.com/public/send-user-signal/x@evil.com",
        "https://api.usedari.com/public/send-user-signal/wf-1_2.3~4",
        "https://api.usedari.com/public/send-user-signal/a//b",
    ]

    @Test("allowed URLs", arguments: allowed)
    func allows(_ url: String) {
        #expect(Self.product.rejection(for: url) == nil)
    }

    static let hostile: [String] = [
        // empty / no scheme / other schemes
        "", "api.usedari.com/public/send-user-signal/x", "//api.usedari.com/public/send-user-signal/x",
        "javascript:alert(1)", "JavaScript://api.usedari.com/public/send-user-signal/x",
        "file:///etc/passwd", "file://api.usedari.com/public/send-user-signal/x",
        "ftp://api.usedari.com/public/send-user-signal/x", "data:text/html,hi",
        "http://api.usedari.com/public/send-user-signal/x", "HTTP://api.usedari.com/public/send-user-signal/x",
        "https:api.usedari.com/public/send-user-signal/x", "https:/api.usedari.com/public/send-user-signal/x",
        "1https://api.usedari.com/public/send-user-signal/x", ":https://api.usedari.com/public/send-user-signal/x",
        // userinfo and authority confusion
        "https://api.usedari.com@evil.com/public/send-user-signal/x",
        "https://user:pass@api.usedari.com/public/send-user-signal/x",
        "https://user@api.usedari.com/public/send-user-signal/x",
        "https://@api.usedari.com/public/send-user-signal/x",
        "https://evil.com#@api.usedari.com/public/send-user-signal/x",
        "https://evil.com?@api.usedari.com/public/send-user-signal/x",
        "https://api.usedari.com:443@evil.com/public/send-user-signal/x",
        "https://api.usedari.com%40evil.com/public/send-user-signal/x",
        "https://api.usedari.com.evil.com/public/send-user-signal/x",
        "https://evil.com/api.usedari.com/public/send-user-signal/x",
        "https://evilapi.usedari.com/public/send-user-signal/x",
        "https://usedari.com/public/send-user-signal/x",
        "https://api.usedari.com./public/send-user-signal/x",
        "https://api.usedari.co/public/send-user-signal/x",
        "https:///public/send-user-signal/x", "https://", "https://:443/public/send-user-signal/x",
        // backslashes and whitespace / control characters
        "https://api.usedari.com\\@evil.com/public/send-user-signal/x",
        "https://evil.com\\api.usedari.com/public/send-user-signal/x",
        "https://api.usedari.com/public/send-user-signal\\..\\admin",
        "https://api.usedari.com/public/send-user-signal/x\tz",
        "https://api.usedari.com/public/send-user-signal/x\nHost: evil.com",
        "https://api.usedari.com/public/send-user-signal/x\r\n",
        " https://api.usedari.com/public/send-user-signal/x",
        "https://api.usedari.com/public/send-user-signal/x ",
        "https://api.usedari.com /public/send-user-signal/x",
        "https://api.usedari.com/public/send-user-signal/\u{0}x",
        "https://api.usedari.com/public/send-user-signal/\u{7F}",
        // unicode / IDN
        "https://api.usedаri.com/public/send-user-signal/x",  // Cyrillic "а"
        "https://api.usedari.com\u{3002}/public/send-user-signal/x",
        "https://ａｐｉ.usedari.com/public/send-user-signal/x",
        "https://api.usedari.com/public/send-user-signal/ｘ",
        "https://api.usedari.com/public/send-user-signal/x\u{200B}",
        "https://xn--api-usedari.com/public/send-user-signal/x",
        // ports
        "https://api.usedari.com:8443/public/send-user-signal/x",
        "https://api.usedari.com:80/public/send-user-signal/x",
        "https://api.usedari.com:/public/send-user-signal/x",
        "https://api.usedari.com:0/public/send-user-signal/x",
        "https://api.usedari.com:65536/public/send-user-signal/x",
        "https://api.usedari.com:99999999999999999999/public/send-user-signal/x",
        "https://api.usedari.com:44a/public/send-user-signal/x",
        "https://api.usedari.com:443:443/public/send-user-signal/x",
        "https://api.usedari.com:-443/public/send-user-signal/x",
        "https://api.usedari.com:+443/public/send-user-signal/x",
        // IP literals
        "https://127.0.0.1/public/send-user-signal/x", "https://[::1]/public/send-user-signal/x",
        "https://[::1/public/send-user-signal/x", "https://[]/public/send-user-signal/x",
        "https://[fe80::1%25eth0]/public/send-user-signal/x", "https://[::1]x/public/send-user-signal/x",
        "https://169.254.169.254/latest/meta-data/", "https://2130706433/public/send-user-signal/x",
        // path prefix, traversal, encodings
        "https://api.usedari.com", "https://api.usedari.com?x=/public/send-user-signal/",
        "https://api.usedari.com/", "https://api.usedari.com/admin",
        "https://api.usedari.com/public/send-user-signal", "https://api.usedari.com/PUBLIC/send-user-signal/x",
        "https://api.usedari.com/x/public/send-user-signal/x",
        "https://api.usedari.com/public/send-user-signal/../../admin",
        "https://api.usedari.com/public/send-user-signal/./x",
        "https://api.usedari.com/public/send-user-signal/x/..",
        "https://api.usedari.com/public/send-user-signal/x/.",
        "https://api.usedari.com/public/send-user-signal/%2e%2e/%2e%2e/admin",
        "https://api.usedari.com/public/send-user-signal/%2E%2E/admin",
        "https://api.usedari.com/public/send-user-signal/.%2e/admin",
        "https://api.usedari.com/public/send-user-signal/..%2fadmin",
        "https://api.usedari.com/public/send-user-signal/..%2Fadmin",
        "https://api.usedari.com/public/send-user-signal/..%5cadmin",
        "https://api.usedari.com/public/send-user-signal/..%5Cadmin",
        "https://api.usedari.com/public/send-user-signal/%252e%252e/admin",
        "https://api.usedari.com/public/send-user-signal/%2",
        "https://api.usedari.com/public/send-user-signal/%zz",
        "https://api.usedari.com/public/send-user-signal/%00",
        "https://api.usedari.com/public/send-user-signal/<script>",
        "https://api.usedari.com/public/send-user-signal/x\"y",
        "https://api.usedari.com/public/send-user-signal/x?a=<b>",
        "https://api.usedari.com/public/send-user-signal/x?a=%zz",
        // percent-escapes that are not valid UTF-8 (AsyncHTTPClient would send "/")
        "https://api.usedari.com/public/send-user-signal/%FF", "https://api.usedari.com/public/send-user-signal/%80",
        "https://api.usedari.com/public/send-user-signal/%C0%AE", "https://api.usedari.com/public/send-user-signal/%ED%A0%80",
        "https://api.usedari.com/public/send-user-signal/%E2%82", "https://api.usedari.com/public/send-user-signal/%F4%90%80%80",
        "https://api.usedari.com/public/send-user-signal/x?t=%FF",
        // IPv6 literals inet_pton does not take (AsyncHTTPClient would treat them as host names)
        "https://[::1.2.3.4.5]/public/send-user-signal/x", "https://[1::2::3]/public/send-user-signal/x",
        "https://[12345::]/public/send-user-signal/x",
        // fragments
        "https://api.usedari.com/public/send-user-signal/x#frag",
        "https://api.usedari.com/public/send-user-signal/x#",
        "https://api.usedari.com/public/send-user-signal/x?y=1#frag",
    ]

    @Test("hostile URLs are rejected with a reason", arguments: hostile)
    func rejects(_ url: String) throws {
        let reason = try #require(Self.product.rejection(for: url))
        #expect(!reason.isEmpty)
        #expect(reason.utf8.count < 200)
        #expect(reason.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 0x20 && $0.value != 0x7F })
    }

    @Test func reasonsAreSpecific() {
        let p = Self.product
        #expect(p.rejection(for: "http://api.usedari.com/public/send-user-signal/x") == "scheme http is not allowed (https only)")
        #expect(p.rejection(for: "https://evil.com/public/send-user-signal/x") == "host evil.com is not in the allowed hosts")
        #expect(p.rejection(for: "https://EVIL.com:8443/p") == "host evil.com:8443 is not in the allowed hosts")
        #expect(p.rejection(for: "https://api.usedari.com@evil.com/public/send-user-signal/x") == "URL carries user credentials")
        #expect(p.rejection(for: "https://api.usedari.com/x") == "path /x does not start with an allowed prefix")
        #expect(p.rejection(for: "") == "URL is empty")
        #expect(p.rejection(for: "https://api.usedari.com/public/send-user-signal/x#f") == "URL carries a fragment")
        #expect(p.rejection(for: "javascript:alert(1)") == "scheme javascript is not allowed (https only)")
        #expect(p.rejection(for: "https://api.usedari.com/public/send-user-signal/../../admin")
            == "path contains a dot segment (. or ..)")
        #expect(p.rejection(for: "https://api.usedari.com/public/send-user-signal/%2e%2e/admin")
            == "path contains an encoded dot (%2e)")
        #expect(p.rejection(for: "https://api.usedari.com:65536/public/send-user-signal/x") == "port 65536 is not valid")
        #expect(p.rejection(for: "https://api.usedari.com?q") == "URL has an empty path")
        #expect(p.rejection(for: "https://api.usedari.com:/public/send-user-signal/x") == "URL has an empty port")
        let long = "https://evil.com/" + String(repeating: "a", count: 10_000)
        #expect(p.rejection(for: "https://api.usedari.com/" + String(repeating: "a", count: 10_000))!.utf8.count < 200)
        #expect(p.rejection(for: long) == "host evil.com is not in the allowed hosts")
    }

    @Test func insecureHTTPOnlyWhenAllowed() {
        let p = URLPolicy(allowedHosts: ["localhost:8080", "fake-dari"], allowedPathPrefixes: ["/send-user-signal/"],
                          allowInsecureHTTP: true)
        #expect(p.rejection(for: "http://localhost:8080/send-user-signal/x") == nil)
        #expect(p.rejection(for: "HTTP://LOCALHOST:8080/send-user-signal/x") == nil)
        #expect(p.rejection(for: "http://fake-dari/send-user-signal/x") == nil)
        #expect(p.rejection(for: "http://fake-dari:80/send-user-signal/x") == nil)
        #expect(p.rejection(for: "https://fake-dari/send-user-signal/x") == nil)
        #expect(p.rejection(for: "https://fake-dari:443/send-user-signal/x") == nil)
        #expect(p.rejection(for: "http://fake-dari:443/send-user-signal/x") != nil)
        #expect(p.rejection(for: "http://fake-dari:8080/send-user-signal/x") != nil)
        #expect(p.rejection(for: "http://localhost/send-user-signal/x") != nil)
        #expect(p.rejection(for: "http://localhost:8081/send-user-signal/x") != nil)
        #expect(p.rejection(for: "http://127.0.0.1:8080/send-user-signal/x") != nil)
        #expect(p.rejection(for: "ftp://localhost:8080/send-user-signal/x") == "scheme ftp is not allowed (https or http only)")
    }

    @Test func entriesWithPortsAndIPv6() {
        let p = URLPolicy(allowedHosts: ["[::1]:8080", "[FE80::1]", "Dari.Example:443", "10.0.0.5:9000"],
                          allowedPathPrefixes: ["/"], allowInsecureHTTP: true)
        #expect(p.rejection(for: "http://[::1]:8080/x") == nil)
        #expect(p.rejection(for: "http://[::1]/x") != nil)
        #expect(p.rejection(for: "http://[::1]:8081/x") != nil)
        #expect(p.rejection(for: "http://[0:0:0:0:0:0:0:1]:8080/x") != nil)  // compared as written
        #expect(p.rejection(for: "https://[fe80::1]/x") == nil)
        #expect(p.rejection(for: "https://[fe80::1]:443/x") == nil)
        #expect(p.rejection(for: "http://[fe80::1]:80/x") == nil)
        #expect(p.rejection(for: "https://[fe80::1]:8443/x") != nil)
        #expect(p.rejection(for: "https://dari.example/x") == nil)  // no port in URL = default 443
        #expect(p.rejection(for: "https://dari.example:443/x") == nil)
        #expect(p.rejection(for: "http://dari.example/x") != nil)  // default 80 is not 443
        #expect(p.rejection(for: "http://dari.example:443/x") == nil)
        #expect(p.rejection(for: "http://10.0.0.5:9000/x") == nil)
        #expect(p.rejection(for: "http://10.0.0.5/x") != nil)
    }

    @Test func entriesAreTrimmedOfASCIIWhitespaceOnly() {
        let p = URLPolicy(allowedHosts: [" dari.example:8443\t", "\u{00A0}nbsp.example"],
                          allowedPathPrefixes: ["/"], allowInsecureHTTP: false)
        #expect(p.rejection(for: "https://dari.example:8443/x") == nil)
        // Non-ASCII padding is not whitespace to us: the entry is malformed and matches nothing.
        #expect(p.rejection(for: "https://nbsp.example/x") != nil)
    }

    @Test func malformedEntriesNeverMatch() {
        let p = URLPolicy(allowedHosts: ["", "bad host", "x:notaport", "user@evil.com", "[::1"],
                          allowedPathPrefixes: ["/"], allowInsecureHTTP: false)
        for url in ["https://x/", "https://x:443/", "https://evil.com/", "https://[::1]/", "https://bad%20host/"] {
            #expect(p.rejection(for: url) != nil, "\(url)")
        }
        let none = URLPolicy(allowedHosts: [], allowedPathPrefixes: ["/"], allowInsecureHTTP: false)
        #expect(none.rejection(for: "https://api.usedari.com/") == "host api.usedari.com is not in the allowed hosts")
    }

    @Test func approveReturnsWhatAsyncHTTPClientWillUse() throws {
        let p = URLPolicy(allowedHosts: ["API.usedari.com", "[FE80::1]:8443", "10.0.0.5:9000"], allowedPathPrefixes: ["/"],
                          allowInsecureHTTP: true)
        #expect(try p.approve("HTTPS://Api.UseDari.COM:00443/p/%7e%3A?q=%26&r").get()
            == ApprovedURL(scheme: "https", host: "Api.UseDari.COM", port: 443, requestTarget: "/p/%7e%3A?q=%26&r"))
        #expect(try p.approve("https://[fe80::1]:8443/x?").get()
            == ApprovedURL(scheme: "https", host: "[fe80::1]", port: 8443, requestTarget: "/x?"))
        let v4 = try p.approve("http://10.0.0.5:9000/a//b;c").get()
        #expect(v4 == ApprovedURL(scheme: "http", host: "10.0.0.5", port: 9000, requestTarget: "/a//b;c"))
        #expect(v4.hostHeader == "10.0.0.5:9000")
        #expect(try p.approve("https://api.usedari.com/x").get().hostHeader == "api.usedari.com")
        #expect(try p.approve("https://API.usedari.com:443/x").get().hostHeader == "API.usedari.com")
        #expect(p.approve("http://api.usedari.com:443/x") == .failure(URLRefusal(reason: "host api.usedari.com:443 is not in the allowed hosts")))
        guard case .failure(let refusal) = p.approve("https://api.usedari.com/%C0%AE") else {
            Issue.record("overlong escape approved")
            return
        }
        #expect(refusal.reason == "path contains percent-escapes that are not valid UTF-8")
        #expect(p.rejection(for: "https://api.usedari.com/x?%ED%A0%80") == "query contains percent-escapes that are not valid UTF-8")
        #expect(p.rejection(for: "https://api.usedari.com/%E2%82%AC%F0%9F%98%80") == nil)
    }

    @Test func ipLiteralsOfTheAllowListAreKnownNormalised() {
        let p = URLPolicy(allowedHosts: ["10.0.0.5:9000", "[::ffff:127.0.0.1]", "[FD00::1]", "dari.example", "010.0.0.1"],
                          allowedPathPrefixes: ["/"], allowInsecureHTTP: true)
        #expect(p.literalAddresses == [.v4(0x0A00_0005), .v4(0x7F00_0001), .v6(0xFD00_0000_0000_0000, 1)])
    }
}

/// The one-pass helpers agree with the definitions they replaced.
@Suite("URLPolicy: fast paths equal the plain definitions")
struct URLPolicyFastPathTests {
    @Test func dotSegmentsAsSplitFindsThem() {
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("./a%".utf8)
        for _ in 0..<20_000 {
            let path = (0..<Int.random(in: 0...9, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let segments = path[...].split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
            let expected = segments.contains { $0.elementsEqual([UInt8(ascii: ".")]) || $0.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) }
            #expect(URLPolicy.hasDotSegment(path[...]) == expected, "\(String(decoding: path, as: UTF8.self))")
        }
    }

    @Test func pathCharactersAsTheGrammarSaysForEveryByte() {
        for c in 0...255 {
            let b = UInt8(c)
            let expected = URLPolicy.isAlpha(b) || URLPolicy.isDigit(b) || URLPolicy.isOneOf(b, "-._~!$&'()*+,;=:@")
            #expect(URLPolicy.isPathChar(b) == expected, "\(c)")
        }
    }

    @Test func escapeFreeASCIIDecodesAndTheSlowPathStillJudgesEscapes() {
        #expect(URLPolicy.decodesToUTF8(Array("/public/send-user-signal/abc".utf8)[...]))
        #expect(URLPolicy.decodesToUTF8(Array("/a%E2%82%AC".utf8)[...]))
        #expect(!URLPolicy.decodesToUTF8(Array("/a%FF".utf8)[...]))
        #expect(!URLPolicy.decodesToUTF8([0x2F, 0xC3][...]), "a non-ASCII byte without an escape")
    }
}
