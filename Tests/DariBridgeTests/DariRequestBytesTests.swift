@testable import DariBridgeApp
import DariBridge
import NIOCore
import Testing

/// The bytes of a POST as `DariClient` writes them, and the field checks that stand in for
/// NIOHTTP1's header validator.
@Suite("DariClient request bytes")
struct DariRequestBytesTests {
    private let approved = ApprovedURL(scheme: "https", host: "api.usedari.com", port: 443,
                                       requestTarget: "/public/send-user-signal/a%20b?x=1")

    @Test func theWholeRequestByteForByte() throws {
        let body = Array(#"{"variables":{"a":1}}"#.utf8)
        var bytes = try DariRequestBytes.encode(approved, body: body, traceHeaders: ["traceparent": "00-ab-cd-01", "tracestate": "k=v"],
                                                userAgent: "dari-bridge/test")
        let text = bytes.readString(length: bytes.readableBytes)
        #expect(text == "POST /public/send-user-signal/a%20b?x=1 HTTP/1.1\r\nHost: api.usedari.com\r\nUser-Agent: dari-bridge/test\r\n"
                + "Content-Type: application/json\r\nAccept: application/json\r\nContent-Length: \(body.count)\r\n"
                + "traceparent: 00-ab-cd-01\r\ntracestate: k=v\r\n\r\n" + #"{"variables":{"a":1}}"#)
        let other = ApprovedURL(scheme: "http", host: "[::1]", port: 8080, requestTarget: "/x")
        var plain = try DariRequestBytes.encode(other, body: [], traceHeaders: [:], userAgent: "u")
        #expect(plain.readString(length: plain.readableBytes)
                == "POST /x HTTP/1.1\r\nHost: [::1]:8080\r\nUser-Agent: u\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: 0\r\n\r\n")
    }

    @Test(arguments: ["a\r\nHost: evil", "a\nb", "a\rb", "a\u{0}b", "a\u{7F}b", " lead", "trail ", "a\u{1B}b"])
    func aTraceValueThatCouldSplitTheHeadIsRefused(value: String) {
        #expect(throws: DariRequestRefused.self) {
            _ = try DariRequestBytes.encode(approved, body: [], traceHeaders: ["tracestate": value], userAgent: "u")
        }
    }

    @Test(arguments: ["", "bad name", "bad:name", "bad\r\nname", "ünicode"])
    func aTraceNameThatIsNotATokenIsRefused(name: String) {
        #expect(throws: DariRequestRefused.self) {
            _ = try DariRequestBytes.encode(approved, body: [], traceHeaders: [name: "v"], userAgent: "u")
        }
    }

    @Test(arguments: ["Host", "content-length", "Transfer-Encoding", "CONNECTION", "Expect", "User-Agent"])
    func aTraceHeaderCannotReplaceTheRequestsOwn(name: String) {
        #expect(throws: DariRequestRefused.self) {
            _ = try DariRequestBytes.encode(approved, body: [], traceHeaders: [name: "x"], userAgent: "u")
        }
    }

    @Test func anApprovalWithSpacesOrControlsIsRefused() {
        for target in ["/a b", "/a\r\nX: y", "", "/é"] {
            let bad = ApprovedURL(scheme: "https", host: "h", port: 443, requestTarget: target)
            #expect(throws: DariRequestRefused.self) { _ = try DariRequestBytes.encode(bad, body: [], traceHeaders: [:], userAgent: "u") }
        }
        let badHost = ApprovedURL(scheme: "https", host: "h\r\nX: y", port: 443, requestTarget: "/")
        #expect(throws: DariRequestRefused.self) { _ = try DariRequestBytes.encode(badHost, body: [], traceHeaders: [:], userAgent: "u") }
    }

    @Test func tabsInsideAValueAreAllowed() throws {
        _ = try DariRequestBytes.encode(approved, body: [], traceHeaders: ["tracestate": "a\tb c"], userAgent: "u")
    }
}
