import DariBridgeApp
import TestSupport
import DariBridge
import Foundation
import FakeDari
import Testing
#if canImport(Glibc)
import Glibc
#endif


/// The policy the client tests run under: the loopback server's `127.0.0.1:port`, any path, http allowed.
func loopbackPolicy(port: Int, allowPrivateAddresses: Bool = false) -> URLPolicy {
    URLPolicy(allowedHosts: ["127.0.0.1:\(port)"], allowedPathPrefixes: ["/"], allowInsecureHTTP: true,
              allowPrivateAddresses: allowPrivateAddresses)
}

/// Starts a recording FakeDari and a real DariClient, runs `body`, then shuts both down (also on failure).
private func withFakeDari(defaultReply: FakeDari.Reply = .ok(),
                          _ body: (FakeDari, DariClient) async throws -> Void) async throws {
    let fake = try await FakeDari.start(port: 0, defaultReply: defaultReply, record: true)
    let client = DariClient(concurrency: 4, policy: loopbackPolicy(port: fake.port))
    do {
        try await body(fake, client)
    } catch {
        try? await client.shutdown()
        try? await fake.shutdown()
        throw error
    }
    try await client.shutdown()
    try await fake.shutdown()
}

private let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

@Suite("DariClient against FakeDari")
struct DariClientTests {
    @Test func sendsTheContractHeadersAndExactBody() async throws {
        try await withFakeDari { fake, client in
            let variables = "{ \"big\": 12345678901234567890, \"t\":\"caf\\u00e9 😀 \\\"q\\\"\",\n \"n\": [1.50, -0.0, {}] }"
            let body = Array(("{\"variables\":" + variables + "}").utf8)
            let response = try await client.post(url: fake.baseURL + "/public/send-user-signal/sig-1", body: body,
                                                 traceHeaders: ["traceparent": trace], timeout: .seconds(60))
            #expect(response.status == 200)
            #expect(response.body == Array(#"{"ok":true}"#.utf8))
            #expect(response.retryAfter == nil)

            let requests = fake.requests(id: "sig-1")
            try #require(requests.count == 1)
            let r = requests[0]
            #expect(r.method == "POST")
            #expect(r.uri == "/public/send-user-signal/sig-1")
            #expect(r.body == body)
            #expect(r.header("Content-Type") == "application/json")
            #expect(r.header("Accept") == "application/json")
            let agent = try #require(r.header("User-Agent"))
            #expect(agent.hasPrefix("dari-bridge/"), "\(agent)")
            #expect(agent == DariClient.userAgent)
            #expect(r.header("Authorization") == nil)
            #expect(r.header("traceparent") == trace)
            #expect(r.header("Content-Length") == String(body.count))
            #expect(r.header("Cookie") == nil)
        }
    }

    @Test func noTraceparentHeaderWhenNoneGiven() async throws {
        try await withFakeDari { fake, client in
            _ = try await client.post(url: fake.baseURL + "/send-user-signal/t", body: Array(#"{"variables":{}}"#.utf8),
                                      traceHeaders: [:], timeout: .seconds(60))
            let r = try #require(fake.requests(id: "t").first)
            #expect(r.header("traceparent") == nil)
            #expect(r.bodyString == #"{"variables":{}}"#)
        }
    }

    @Test func errorStatusBodyAndRetryAfterAreExposed() async throws {
        try await withFakeDari { fake, client in
            fake.script(id: "busy", [FakeDari.Reply(status: 503, headers: [("Retry-After", "7")], body: #"{"detail":"busy"}"#)])
            let response = try await client.post(url: fake.baseURL + "/r/busy", body: Array("{}".utf8), traceHeaders: [:], timeout: .seconds(60))
            #expect(response.status == 503)
            #expect(response.retryAfter == "7")
            #expect(response.body == Array(#"{"detail":"busy"}"#.utf8))
        }
    }

    @Test func redirectIsReturnedNotFollowed() async throws {
        try await withFakeDari { fake, client in
            fake.script(id: "moved", [FakeDari.Reply(status: 302, headers: [("Location", fake.baseURL + "/elsewhere/target")], body: "")])
            let response = try await client.post(url: fake.baseURL + "/r/moved", body: Array("{}".utf8), traceHeaders: [:], timeout: .seconds(60))
            #expect(response.status == 302)
            #expect(fake.requestCount(id: "target") == 0)
            #expect(fake.requestCount == 1)
        }
    }

    @Test func slowReplyTimesOut() async throws {
        try await withFakeDari { fake, client in
            fake.script(id: "slow", [FakeDari.Reply(status: 200, delay: .seconds(2))])
            let error = await #expect(throws: DariTransportError.self) {
                _ = try await client.post(url: fake.baseURL + "/r/slow", body: Array("{}".utf8), traceHeaders: [:], timeout: .milliseconds(300))
            }
            #expect(error?.reason.contains("timed out") == true, "\(String(describing: error))")
        }
    }

    @Test func connectionRefusedIsATransportError() async throws {
        // A port that is bound but not listening: connects are refused, and no other
        // test running in parallel can take the port meanwhile (a FakeDari started
        // and shut down here once freed a port that another test then took).
        let (reserved, port) = try loopbackSocket(listening: false)
        defer { close(reserved) }
        // AsyncHTTPClient keeps retrying a refused connect until the connect timeout, so keep it short.
        let client = DariClient(concurrency: 1, policy: loopbackPolicy(port: port), connectTimeout: .seconds(1))
        let error = await #expect(throws: DariTransportError.self) {
            _ = try await client.post(url: "http://127.0.0.1:\(port)/r/x", body: Array("{}".utf8), traceHeaders: [:], timeout: .seconds(5))
        }
        #expect(error?.reason.isEmpty == false)
        #expect(error?.reason.contains("refused") == true, "\(String(describing: error))")
        try await client.shutdown()
    }

    @Test func oversizedResponseBodyIsDroppedButStatusKept() async throws {
        try await withFakeDari { fake, client in
            let huge = "\"" + String(repeating: "x", count: DariClient.maxResponseBytes + 10) + "\""
            fake.script(id: "huge", [FakeDari.Reply(status: 200, body: huge)])
            let response = try await client.post(url: fake.baseURL + "/r/huge", body: Array("{}".utf8), traceHeaders: [:], timeout: .seconds(60))
            #expect(response.status == 200)
            #expect(response.body.isEmpty)
        }
    }

    @Test(.timeLimit(.minutes(1))) func anEndlessBodyStopsAtTheLimitAndKeepsTheStatus() async throws {
        // A raw server that announces 100 MB, sends 2 MiB and then stalls with the
        // connection open: the answer must come back at the limit (status kept, body
        // dropped), not as a timeout that the retry policy would turn into a second POST.
        let (listener, port) = try loopbackSocket(listening: true)
        defer { close(listener) }
        let server = Thread {
            let c = acceptCloseOnExec(listener)
            guard c >= 0 else { return }
            var buf = [UInt8](repeating: 0, count: 65536)
            _ = read(c, &buf, buf.count)
            var out = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\nRetry-After: 7\r\n\r\n".utf8)
            out += [UInt8](repeating: UInt8(ascii: "x"), count: 2 << 20)
            sendAll(c, out)
            _ = read(c, &buf, buf.count)  // stall until the client closes
            close(c)
        }
        server.start()
        let client = DariClient(concurrency: 1, policy: loopbackPolicy(port: port))
        let response = try await client.post(url: "http://127.0.0.1:\(port)/r/x", body: Array("{}".utf8), traceHeaders: [:],
                                              timeout: .seconds(30))
        #expect(response.status == 200)
        #expect(response.body.isEmpty)
        #expect(response.retryAfter == "7")
        try await client.shutdown()
    }

    @Test func manySequentialRequestsOnOneClient() async throws {
        // FakeDari does not expose connection counts, so connection reuse itself is not asserted;
        // this checks that 20 requests in a row on the pooled client all get their own answer.
        try await withFakeDari { fake, client in
            for i in 0..<20 {
                fake.script(id: "s\(i)", [FakeDari.Reply(status: 200, body: #"{"i":\#(i)}"#)])
                let response = try await client.post(url: fake.baseURL + "/r/s\(i)", body: Array("{}".utf8), traceHeaders: [:], timeout: .seconds(60))
                #expect(response.body == Array(#"{"i":\#(i)}"#.utf8))
            }
            #expect(fake.requestCount == 20)
        }
    }

    @Test func executorOverRealClientRetriesThenSucceeds() async throws {
        try await withFakeDari { fake, client in
            fake.script(id: "flaky", [FakeDari.Reply(status: 503, body: "{}"), FakeDari.Reply(status: 200, body: #"{"resumed":true}"#)])
            let sleeps = SleepRecorder()
            let executor = ResumeExecutor(transport: client, policy: RetryPolicy(maxAttempts: 3), requestTimeout: .seconds(10),
                                          sleep: sleeps.sleep, randomUnit: { 0.5 })
            let request = ResumeRequest(resumeURL: fake.baseURL + "/public/send-user-signal/flaky",
                                        variablesJSON: Array(#"{"a":"b"}"#.utf8))
            let result = try await executor.execute(request, traceHeaders: ["traceparent": trace])
            #expect(result.kind == .succeeded)
            #expect(result.attempts == 2)
            #expect(result.responseJSON == Array(#"{"resumed":true}"#.utf8))
            #expect(sleeps.durations.count == 1)
            let sent = fake.requests(id: "flaky")
            #expect(sent.count == 2)
            #expect(sent.allSatisfy { $0.bodyString == #"{"variables":{"a":"b"}}"# && $0.header("traceparent") == trace })
        }
    }
}
