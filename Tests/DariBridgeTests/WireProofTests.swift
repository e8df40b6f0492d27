@testable import DariBridgeApp
import TestSupport
import DariBridge
import Foundation
import Testing

/// Proof that the request that goes out is the request the policy approved: every URL
/// below goes through the real `DariClient` (which approves it again, as the pipeline
/// did) to a `RecordingServer` whose `127.0.0.1:port` is allowed (http allowed, any path).
/// Each is either refused (policy or `DariRequestRefused`) with no connection made, or
/// reaches the server with a request line `POST <approved requestTarget> HTTP/1.1`
/// byte for byte and `Host` equal to the approved host:port.
/// `{H}` is the server's `127.0.0.1:port`, `{P}` its port.
@Suite("Wire proof: what is sent is what was approved")
struct WireProofTests {
    /// Must reach the server.
    static let allowed: [String] = [
        "http://{H}/public/send-user-signal/abc123",
        "http://{H}/send-user-signal/abc?token=x&y=1",
        "http://{H}/public/send-user-signal/abc?",
        "HTTP://{H}/public/send-user-signal/abc",
        "http://{H}/public/send-user-signal/a%20b",
        "http://{H}/public/send-user-signal/x@evil.com",
        "http://{H}/public/send-user-signal/wf-1_2.3~4",
        "http://{H}/public/send-user-signal/a//b",
        "http://{H}/public/send-user-signal/%e2%82%ac",
        "http://{H}/public/send-user-signal/%E2%82%AC%F0%9F%98%80",
        "http://{H}/r/%7E%7e~",
        "http://{H}/r/%3a%3A:",
        "http://{H}/r/a;b=c;d",
        "http://{H}/r/..;/admin",
        "http://{H}/r/x?a=%26&b=%3F%23",
        "http://{H}/r/x?next=/a/../b%2f",
        "http://{H}/r/x??",
        "http://{H}/r/x?a=b?c=d/e",
        "http://{H}/r/%41%42%43",
        "http://{H}/r/!$&'()*+,;=:@",
        "http://{H}//double",
        "http://{H}/",
        "http://127.0.0.1:{P}/r/spelled-out",
        "http://{H}/r/%2B%2b+",
        "http://{H}/r/%C2%80%DF%BF%E0%A0%80%EF%BF%BF%F4%8F%BF%BF",
    ]

    static let hostile: [String] = [
        // invalid UTF-8 escapes: swift-foundation's URL.path is "" for these and AsyncHTTPClient would send "/"
        "http://{H}/public/send-user-signal/%FF", "http://{H}/public/send-user-signal/%ff", "http://{H}/r/%80",
        "http://{H}/r/%C0%AE", "http://{H}/r/%c0%ae%c0%ae/admin", "http://{H}/r/%C1%BF", "http://{H}/r/%E0%80%AF",
        "http://{H}/r/%F0%80%80%AF", "http://{H}/r/%ED%A0%80", "http://{H}/r/%ED%BF%BF", "http://{H}/r/%ED%A0%BD%ED%B8%80",
        "http://{H}/r/%E2%82", "http://{H}/r/%E2", "http://{H}/r/%F0%9F%98", "http://{H}/r/%F4%90%80%80", "http://{H}/r/%F5%80%80%80",
        "http://{H}/r/%FE", "http://{H}/r/%BF%BF", "http://{H}/r/a%80b", "http://{H}/r/%E2%28%A1", "http://{H}/r/x?a=%FF",
        "http://{H}/r/x?a=%C0%AE", "http://{H}/r/x?%ED%A0%80",
        // dot segments, encoded dots, semicolons
        "http://{H}/r/../admin", "http://{H}/r/./x", "http://{H}/r/x/..", "http://{H}/r/x/.", "http://{H}/r/%2e%2e/admin",
        "http://{H}/r/%2E%2e/admin", "http://{H}/r/.%2E/admin", "http://{H}/r/%2e/x", "http://{H}/r/..%2f..%2fadmin",
        "http://{H}/r/..%2Fadmin", "http://{H}/r/..%5cadmin", "http://{H}/r/%252e%252e/admin", "http://{H}/r/%00",
        "http://{H}/r/..;/..;/admin", "http://{H}/r/;/../admin", "http://{H}/./r/x", "http://{H}/../r/x",
        // encoded ? and # and fragments
        "http://{H}/r/x%3Fa=1", "http://{H}/r/x%3fa", "http://{H}/r/x%23frag", "http://{H}/r/x#frag", "http://{H}/r/x?y#z",
        "http://{H}/r/x#", "http://{H}#/r/x", "http://{H}?/r/x", "http://{H}?a=/r/x",
        // userinfo and authority confusion
        "http://user:pass@{H}/r/x", "http://user@{H}/r/x", "http://@{H}/r/x", "http://{H}@evil.com/r/x",
        "http://evil.com@{H}/r/x", "http://{H}%40evil.com/r/x", "http://evil.com#@{H}/r/x", "http://evil.com?@{H}/r/x",
        "http://{H}:{P}/r/x", "http://{H}.evil.com/r/x",
        // backslashes, whitespace, control characters
        "http://{H}\\@evil.com/r/x", "http://{H}/r\\..\\admin", "http://{H}/r/x\ty", "http://{H}/r/x\nHost: evil.com",
        "http://{H}/r/x\r\nX: y", " http://{H}/r/x", "http://{H}/r/x ", "http://{H} /r/x", "http://{H}/r/\u{0}",
        "http://{H}/r/\u{7F}", "http://{H}/r/x\u{0B}", "http://{H}/r/%0D%0AHost:%20evil",
        // non-ASCII and IDNA / punycode hosts
        "http://127.0.0.1\u{3002}:{P}/r/x", "http://１２７.0.0.1:{P}/r/x", "http://{H}/r/ｘ", "http://{H}/r/x\u{200B}",
        "http://xn--127-0.0.1:{P}/r/x", "http://bücher.example:{P}/r/x", "http://xn--bcher-kva.example:{P}/r/x",
        "http://{H}/r/é",
        // other spellings of the host
        "http://localhost:{P}/r/x", "http://127.1:{P}/r/x", "http://127.000.000.001:{P}/r/x", "http://0x7f.0.0.1:{P}/r/x",
        "http://2130706433:{P}/r/x", "http://0177.0.0.1:{P}/r/x", "http://127.0.0.1.:{P}/r/x", "http://[::1]:{P}/r/x",
        "http://[::ffff:127.0.0.1]:{P}/r/x", "http://[::ffff:7f00:1]:{P}/r/x", "http://[0:0:0:0:0:0:0:1]:{P}/r/x",
        "http://[::1%25lo]:{P}/r/x", "http://[::1]x:{P}/r/x", "http://[::127.0.0.1.1]:{P}/r/x", "http://[127.0.0.1]:{P}/r/x",
        "http://[::1/r/x", "http://[]:{P}/r/x", "http://0.0.0.0:{P}/r/x", "http://127.0.0.2:{P}/r/x",
        // ports
        "http://127.0.0.1/r/x", "http://127.0.0.1:/r/x", "http://127.0.0.1::{P}/r/x", "http://127.0.0.1:0/r/x",
        "http://127.0.0.1:65536/r/x", "http://127.0.0.1:443/r/x", "http://127.0.0.1:80/r/x", "http://127.0.0.1:+{P}/r/x",
        "http://127.0.0.1:+1/r/x", "http://127.0.0.1:-{P}/r/x", "http://127.0.0.1: {P}/r/x", "http://127.0.0.1:{P}a/r/x",
        "http://127.0.0.1:00{P}/r/x", "http://127.0.0.1:{P}:{P}/r/x", "http://127.0.0.1:%3{P}/r/x",
        "http://127.0.0.1:99999999999999999999/r/x",
        // schemes and structure
        "https://127.0.0.1/r/x", "http://127.0.0.1:0{P}/r/x", "ftp://{H}/r/x", "file://{H}/r/x", "ws://{H}/r/x", "http:/{H}/r/x",
        "http:{H}/r/x", "http:///{H}/r/x", "//{H}/r/x", "{H}/r/x", "http://", "http://{H}", "http://{H}?q",
        "javascript://{H}/r/x", "http+unix://{H}/r/x", "unix://{H}/r/x", "",
        // path and query characters outside the grammar
        "http://{H}/r/<script>", "http://{H}/r/x\"y", "http://{H}/r/x`y", "http://{H}/r/x{y}", "http://{H}/r/x|y",
        "http://{H}/r/x^y", "http://{H}/r/[x]", "http://{H}/r/x?a=<b>", "http://{H}/r/%zz", "http://{H}/r/%2",
        "http://{H}/r/x?a=%zz", "http://{H}/r/x?a=%", "http://{H}/r/x?a=[b]",
    ]

    @Test func theListIsLongEnough() {
        #expect(Self.hostile.count >= 100)
        #expect(Set(Self.hostile).count == Self.hostile.count)
    }

    @Test(.timeLimit(.minutes(2))) func everyURLIsRefusedOrSentExactlyAsApproved() async throws {
        let server = try RecordingServer()
        defer { server.stop() }
        let policy = loopbackPolicy(port: server.port)
        let client = DariClient(concurrency: 1, policy: policy)
        var sent = Set<String>()
        for template in Self.allowed + Self.hostile {
            let url = template.replacingOccurrences(of: "{H}", with: "127.0.0.1:\(server.port)")
                .replacingOccurrences(of: "{P}", with: "\(server.port)")
            let before = server.snapshot
            let approval = policy.approve(url)
            do {
                _ = try await client.post(url: url, body: Array("{}".utf8), traceHeaders: [:], timeout: .seconds(60))
                let after = server.snapshot
                guard case .success(let approved) = approval else {
                    Issue.record("sent although the policy refused it: \(url.debugDescription)")
                    continue
                }
                try #require(after.requests.count == before.requests.count + 1, "\(url.debugDescription)")
                let seen = after.requests[after.requests.count - 1]
                #expect(seen.requestLine == Array("POST \(approved.requestTarget) HTTP/1.1".utf8),
                        "\(url.debugDescription): sent \(seen.requestLineText.debugDescription)")
                #expect(seen.host == approved.hostHeader, "\(url.debugDescription): Host \(String(describing: seen.host))")
                sent.insert(template)
            } catch let refused as DariRequestRefused {
                #expect(!refused.reason.isEmpty)
                if case .failure(let refusal) = approval { #expect(refused.reason == refusal.reason) }
                let after = server.snapshot
                #expect(after.connections == before.connections, "\(url.debugDescription) made a connection")
                #expect(after.bytes == before.bytes, "\(url.debugDescription) sent bytes")
            } catch {
                Issue.record("\(url.debugDescription): neither sent nor refused: \(error)")
            }
        }
        for template in Self.allowed {
            #expect(sent.contains(template), "allowed but not sent: \(template)")
        }
        try await client.shutdown()
    }

    /// Host names (not IP literals) in the allow-list: the `Host` header is the host as
    /// written, and a private address behind a name is refused before a byte is sent
    /// unless DARI_BRIDGE_ALLOW_PRIVATE_ADDRESSES is on.
    @Test(.timeLimit(.minutes(1)), arguments: [false, true])
    func hostNamesGoOutAsWritten(allowPrivateAddresses: Bool) async throws {
        let server = try RecordingServer()
        defer { server.stop() }
        let p = server.port
        let policy = URLPolicy(allowedHosts: ["localhost:\(p)", "127.1:\(p)"], allowedPathPrefixes: ["/"],
                               allowInsecureHTTP: true, allowPrivateAddresses: allowPrivateAddresses)
        let client = DariClient(concurrency: 1, policy: policy)
        let urls = ["http://localhost:\(p)/r/x", "http://LocalHost:\(p)/r/%7e?a=%3F", "HTTP://LOCALHOST:\(p)/r/x",
                    "http://127.1:\(p)/r/a;b//c"]
        for url in urls {
            let approved = try policy.approve(url).get()
            let before = server.snapshot
            do {
                _ = try await client.post(url: url, body: Array("{}".utf8), traceHeaders: [:], timeout: .seconds(60))
                #expect(allowPrivateAddresses, "\(url): sent to loopback behind a name with the setting off")
                let seen = try #require(server.snapshot.requests.last)
                #expect(server.snapshot.requests.count == before.requests.count + 1)
                #expect(seen.requestLineText == "POST \(approved.requestTarget) HTTP/1.1", "\(url)")
                #expect(seen.host == approved.hostHeader, "\(url)")
            } catch let refused as DariRequestRefused {
                #expect(!allowPrivateAddresses, "\(url): refused with the setting on: \(refused)")
                await server.waitForFinishedConnections(server.snapshot.connections)
                #expect(server.snapshot.bytes == before.bytes, "\(url): bytes reached the server")
            }
        }
        try await client.shutdown()
    }

    /// The known bypass, spelled out: the policy used to pass `%FF` and AsyncHTTPClient sent `POST /`.
    @Test func theInvalidUTF8BypassIsClosed() {
        let policy = loopbackPolicy(port: 8080)
        for escape in ["%FF", "%80", "%C0%AE", "%ED%A0%80", "%E2%82", "%F0%9F%98"] {
            let reason = policy.rejection(for: "http://127.0.0.1:8080/public/send-user-signal/" + escape)
            #expect(reason == "path contains percent-escapes that are not valid UTF-8", "\(escape)")
        }
    }
}
