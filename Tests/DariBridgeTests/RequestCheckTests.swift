@testable import DariBridgeApp
import AsyncHTTPClient
import Testing
@testable import DariBridge

/// The last check before sending (`DariClient.mismatch`), on its own: a request whose
/// target, host, port or scheme differs from what was approved is refused. Here the
/// "approved" values are written by hand, as a policy with a hole would produce them.
@Suite("DariClient: request checked against the approval")
struct RequestCheckTests {
    private func request(_ url: String) throws -> HTTPClient.Request {
        try HTTPClient.Request(url: url, method: .POST)
    }

    @Test func theInvalidUTF8PathThatAsyncHTTPClientSendsAsSlashIsCaught() throws {
        let r = try request("https://api.usedari.com/public/send-user-signal/%FF")
        #expect(DariClient.requestTarget(of: r.url) == "/")
        let approved = ApprovedURL(scheme: "https", host: "api.usedari.com", port: 443, requestTarget: "/public/send-user-signal/%FF")
        #expect(DariClient.mismatch(r, approved) == "the HTTP client would send another request target than the approved one")
    }

    @Test func eachFieldIsCompared() throws {
        let r = try request("http://Dari.Example:8080/a/%7e?q=%26")
        let good = ApprovedURL(scheme: "http", host: "Dari.Example", port: 8080, requestTarget: "/a/%7e?q=%26")
        #expect(DariClient.mismatch(r, good) == nil)
        var other = good
        other.scheme = "https"
        #expect(DariClient.mismatch(r, other)?.contains("scheme") == true)
        other = good
        other.host = "dari.example"
        #expect(DariClient.mismatch(r, other)?.contains("host") == true)
        other = good
        other.port = 80
        #expect(DariClient.mismatch(r, other)?.contains("port") == true)
        other = good
        other.requestTarget = "/a/~?q=%26"
        #expect(DariClient.mismatch(r, other)?.contains("request target") == true)
        var withHost = r
        withHost.headers.add(name: "Host", value: "evil.example")
        #expect(DariClient.mismatch(withHost, good)?.contains("Host header") == true)
    }

    @Test func ipv6HostsCompareWithBrackets() throws {
        let r = try request("http://[::1]:8080/x")
        #expect(r.host == "[::1]")
        #expect(DariClient.mismatch(r, ApprovedURL(scheme: "http", host: "[::1]", port: 8080, requestTarget: "/x")) == nil)
    }
}
