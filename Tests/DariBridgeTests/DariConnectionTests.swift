import DariBridgeApp
import DariBridge
import Foundation
import NIOSSL
import TestSupport
import Testing

/// The keep-alive connections of `DariClient` against a raw server that misbehaves on
/// purpose: reuse, a server that closes, stalls, cancellations, malformed and informational
/// answers. Every request here is a POST that must reach the server at most once.
@Suite("DariClient connections")
struct DariConnectionTests {
    /// The deadline is generous: in the whole test run, other suites' broker start-up can hold
    /// the cooperative pool for seconds, and a deadline counts from the call.
    private func post(_ client: DariClient, _ port: Int, _ path: String = "/r/x", timeout: Duration = .seconds(60)) async throws -> DariResponse {
        try await client.post(url: "http://127.0.0.1:\(port)\(path)", body: Array("{}".utf8), traceHeaders: [:], timeout: timeout)
    }

    private func withServer(_ script: @escaping ScriptedHTTPServer.Script, concurrency: Int = 4,
                            _ body: (ScriptedHTTPServer, DariClient) async throws -> Void) async throws {
        let server = try ScriptedHTTPServer(script)
        let client = DariClient(concurrency: concurrency, policy: loopbackPolicy(port: server.port, allowPrivateAddresses: true))
        do {
            try await body(server, client)
        } catch {
            try? await client.shutdown()
            server.stop()
            throw error
        }
        try await client.shutdown()
        server.stop()
    }

    @Test func sequentialRequestsShareOneKeepAliveConnection() async throws {
        try await withServer({ _, i, _ in .reply(ScriptedHTTPServer.ok(#"{"i":\#(i)}"#), close: false) }) { server, client in
            for i in 0..<20 {
                let response = try await post(client, server.port)
                #expect(response.body == Array(#"{"i":\#(i)}"#.utf8))
            }
            #expect(server.snapshot.connections == 1)
            #expect(server.snapshot.requests == 20)
        }
    }

    @Test func concurrentRequestsGetTheirOwnAnswers() async throws {
        try await withServer({ _, _, line in
            let path = line.split(separator: " ")[1]
            return .reply(ScriptedHTTPServer.ok(#"{"path":"\#(path)"}"#), close: false)
        }, concurrency: 32) { server, client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<32 {
                    group.addTask {
                        for round in 0..<5 {
                            let response = try await post(client, server.port, "/r/\(i)/\(round)")
                            #expect(response.body == Array(#"{"path":"/r/\#(i)/\#(round)"}"#.utf8))
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(server.snapshot.requests == 160)
            #expect(server.snapshot.connections <= 32)
        }
    }

    @Test func connectionCloseIsHonoured() async throws {
        try await withServer({ _, _, _ in .reply(ScriptedHTTPServer.ok("{}", extraHeaders: "Connection: close\r\n"), close: true) }) { server, client in
            for _ in 0..<3 {
                let r = try await post(client, server.port)
                #expect(r.status == 200)
            }
            #expect(server.snapshot.connections == 3)
        }
    }

    @Test func anIdleConnectionTheServerClosedIsNotUsed() async throws {
        // The server answers as keep-alive and then closes: the next request must go out on
        // a new connection, not fail on the closed one (and not reach the server twice).
        try await withServer({ _, _, _ in .reply(ScriptedHTTPServer.ok(), close: true) }) { server, client in
            let r1 = try await post(client, server.port)
            #expect(r1.status == 200)
            await server.wait { $0.connections == 1 }
            try await Task.sleep(for: .milliseconds(200))  // the FIN reaches the client's event loop
            let r2 = try await post(client, server.port)
            #expect(r2.status == 200)
            #expect(server.snapshot.connections == 2)
            #expect(server.snapshot.requests == 2)
        }
    }

    @Test func aTimedOutConnectionIsClosedAndNotReused() async throws {
        // The first request makes the connection (an idle one then, so the second starts at
        // once, whatever the machine's load); the second stalls past its deadline.
        try await withServer({ connection, request, _ in
            connection == 0 && request == 1 ? .stall : .reply(ScriptedHTTPServer.ok(), close: false)
        }) { server, client in
            let first = try await post(client, server.port)
            #expect(first.status == 200)
            let error = await #expect(throws: DariTransportError.self) { try await post(client, server.port, timeout: .milliseconds(500)) }
            #expect(error?.reason == "request timed out")
            await server.wait { $0.closedByClient == 1 }
            #expect(server.snapshot.closedByClient == 1, "the stalled connection was not closed")
            let third = try await post(client, server.port)
            #expect(third.status == 200)
            #expect(server.snapshot.connections == 2)
        }
    }

    @Test func aDeadlineThatPassedBeforeTheStartSendsNothing() async throws {
        try await withServer({ _, _, _ in .reply(ScriptedHTTPServer.ok(), close: false) }) { server, client in
            let first = try await post(client, server.port)  // leaves an idle connection
            #expect(first.status == 200)
            let error = await #expect(throws: DariTransportError.self) { try await post(client, server.port, timeout: .zero) }
            #expect(error?.reason == "request timed out")
            let again = try await post(client, server.port)  // the idle connection is still good
            #expect(again.status == 200)
            #expect(server.snapshot.requests == 2, "the timed-out request reached the server")
            #expect(server.snapshot.connections == 1)
        }
    }

    @Test func cancellingTheTaskClosesTheConnection() async throws {
        try await withServer({ _, _, _ in .stall }) { server, client in
            let task = Task { try await post(client, server.port, timeout: .seconds(30)) }
            await server.wait { $0.requests == 1 }
            task.cancel()
            await #expect(throws: CancellationError.self) { _ = try await task.value }
            await server.wait { $0.closedByClient == 1 }
            #expect(server.snapshot.closedByClient == 1)
        }
    }

    @Test func aCloseInTheMiddleOfTheBodyIsATransportError() async throws {
        let partial = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"ok\":"
        try await withServer({ _, _, _ in .reply(partial, close: true) }) { server, client in
            let error = await #expect(throws: DariTransportError.self) { try await post(client, server.port) }
            #expect(error?.reason == "connection closed in the middle of the answer")
        }
    }

    @Test func aCloseBeforeAnyAnswerIsATransportError() async throws {
        try await withServer({ _, _, _ in .reply("", close: true) }) { server, client in
            let error = await #expect(throws: DariTransportError.self) { try await post(client, server.port) }
            #expect(error?.reason == "connection closed before the answer")
            #expect(server.snapshot.requests == 1)
        }
    }

    @Test func aCloseDelimitedBodyIsReadToTheEnd() async throws {
        let answer = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"until\":\"close\"}"
        try await withServer({ _, _, _ in .reply(answer, close: true) }) { server, client in
            let r4 = try await post(client, server.port)
            #expect(r4.body == Array(#"{"until":"close"}"#.utf8))
        }
    }

    @Test func informationalAnswersBeforeTheRealOneAreSkipped() async throws {
        let answer = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n" + ScriptedHTTPServer.ok(#"{"real":1}"#)
        try await withServer({ _, _, _ in .reply(answer, close: false) }) { server, client in
            let response = try await post(client, server.port)
            #expect(response.status == 200)
            #expect(response.body == Array(#"{"real":1}"#.utf8))
        }
    }

    @Test func switchingProtocolsIsReturnedAndTheConnectionDropped() async throws {
        let upgrade = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        try await withServer({ connection, _, _ in connection == 0 ? .reply(upgrade, close: false) : .reply(ScriptedHTTPServer.ok(), close: false) }) { server, client in
            let r5 = try await post(client, server.port)
            #expect(r5.status == 101)
            let r6 = try await post(client, server.port)
            #expect(r6.status == 200)
            #expect(server.snapshot.connections == 2)
        }
    }

    @Test(arguments: [
        "NOT HTTP AT ALL\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\n{}{}{}{}",
        "HTTP/1.1 200 OK\r\nX-Big: \(String(repeating: "a", count: 20_000))\r\nContent-Length: 2\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Many: 1\r\n", count: 300) + "Content-Length: 2\r\n\r\n{}",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ])
    func malformedAnswersAreTransportErrors(answer: String) async throws {
        try await withServer({ _, _, _ in .reply(answer, close: false) }) { server, client in
            let error = await #expect(throws: DariTransportError.self) { try await post(client, server.port) }
            #expect(error?.reason.hasPrefix("invalid HTTP answer") == true, "\(String(describing: error))")
            #expect(server.snapshot.requests == 1, "a malformed answer must not lead to a second POST")
        }
    }

    @Test func anAnswerNobodyAskedForClosesTheConnection() async throws {
        // Two answers for one request: the second would be taken for the next request's.
        let twice = ScriptedHTTPServer.ok(#"{"n":1}"#) + ScriptedHTTPServer.ok(#"{"n":2}"#)
        try await withServer({ _, _, _ in .reply(twice, close: false) }) { server, client in
            let r7 = try await post(client, server.port)
            #expect(r7.body == Array(#"{"n":1}"#.utf8))
            await server.wait { $0.closedByClient == 1 }
            let second = try await post(client, server.port)
            #expect(second.body == Array(#"{"n":1}"#.utf8), "the stray answer was paired with the next request")
            #expect(server.snapshot.connections == 2)
        }
    }

    @Test func idleConnectionsAreClosedAfterTheIdleTimeout() async throws {
        let server = try ScriptedHTTPServer { _, _, _ in .reply(ScriptedHTTPServer.ok(), close: false) }
        defer { server.stop() }
        let client = DariClient(concurrency: 4, policy: loopbackPolicy(port: server.port, allowPrivateAddresses: true),
                                connectTimeout: .seconds(30), tlsConfiguration: .makeClientConfiguration(), idleTimeout: .milliseconds(300))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<3 { group.addTask { _ = try await post(client, server.port, "/r/\(i)") } }
            try await group.waitForAll()
        }
        let opened = server.snapshot.connections
        #expect(opened >= 1)
        await server.wait { $0.closedByClient == opened }
        #expect(server.snapshot.closedByClient == opened, "the sweep did not close the idle connections")
        let response = try await post(client, server.port)  // a new connection, not a closed one
        #expect(response.status == 200)
        #expect(server.snapshot.connections == opened + 1)
        try await client.shutdown()
    }

    @Test func shutdownClosesIdleConnections() async throws {
        let server = try ScriptedHTTPServer { _, _, _ in .reply(ScriptedHTTPServer.ok(), close: false) }
        defer { server.stop() }
        let client = DariClient(concurrency: 2, policy: loopbackPolicy(port: server.port, allowPrivateAddresses: true))
        let r8 = try await post(client, server.port)
        #expect(r8.status == 200)
        try await client.shutdown()
        await server.wait { $0.closedByClient == 1 }
        #expect(server.snapshot.closedByClient == 1)
        await #expect(throws: DariTransportError.self) { try await post(client, server.port) }
    }
}
