import DariBridgeApp
import TestSupport
import DariBridge
import Foundation
import Testing

private func hostNamePolicy(_ hosts: [String], allowPrivateAddresses: Bool = false) -> URLPolicy {
    URLPolicy(allowedHosts: hosts, allowedPathPrefixes: ["/"], allowInsecureHTTP: true, allowPrivateAddresses: allowPrivateAddresses)
}

/// The connected address is checked on the socket (DARI_BRIDGE_ALLOW_PRIVATE_ADDRESSES):
/// `localhost` is an allowed host *name* here, and the server behind it is on 127.0.0.1.
@Suite("Connected-address check")
struct AddressCheckTests {
    @Test func loopbackBehindAHostNameIsRefusedBeforeAnyRequestByte() async throws {
        let server = try RecordingServer()
        defer { server.stop() }
        let client = DariClient(concurrency: 2, policy: hostNamePolicy(["localhost:\(server.port)"]))
        for _ in 0..<2 {  // the refused connection is not kept in the pool for the next request
            let error = await #expect(throws: DariRequestRefused.self) {
                _ = try await client.post(url: "http://localhost:\(server.port)/r/x", body: Array("{}".utf8),
                                          traceHeaders: [:], timeout: .seconds(60))
            }
            #expect(error?.reason.contains("127.0.0.1 is loopback 127.0.0.0/8") == true, "\(String(describing: error))")
        }
        let connected = server.snapshot.connections
        await server.waitForFinishedConnections(connected)
        let seen = server.snapshot
        // The check ran on real connections (the socket was accepted), and not a byte arrived.
        #expect(seen.connections >= 2)
        #expect(seen.bytes == 0)
        #expect(seen.requests.isEmpty)
        try await client.shutdown()
    }

    @Test func settingOnLetsAHostNameReachLoopback() async throws {
        let server = try RecordingServer()
        defer { server.stop() }
        let client = DariClient(concurrency: 2, policy: hostNamePolicy(["localhost:\(server.port)"], allowPrivateAddresses: true))
        let response = try await client.post(url: "http://localhost:\(server.port)/r/x", body: Array("{}".utf8),
                                             traceHeaders: [:], timeout: .seconds(60))
        #expect(response.status == 200)
        let seen = server.snapshot.requests
        try #require(seen.count == 1)
        #expect(seen[0].requestLineText == "POST /r/x HTTP/1.1")
        #expect(seen[0].host == "localhost:\(server.port)")
        try await client.shutdown()
    }

    @Test func theSameAddressWrittenAsALiteralIsTakenAsMeant() async throws {
        let server = try RecordingServer()
        defer { server.stop() }
        let client = DariClient(concurrency: 2, policy: hostNamePolicy(["localhost:\(server.port)", "127.0.0.1"]))
        let response = try await client.post(url: "http://localhost:\(server.port)/r/x", body: Array("{}".utf8),
                                             traceHeaders: [:], timeout: .seconds(60))
        #expect(response.status == 200)
        #expect(server.snapshot.requests.count == 1)
        try await client.shutdown()
    }

    @Test func anotherLiteralDoesNotExemptIt() async throws {
        let server = try RecordingServer()
        defer { server.stop() }
        let client = DariClient(concurrency: 2, policy: hostNamePolicy(["localhost:\(server.port)", "127.0.0.2", "[::2]"]))
        await #expect(throws: DariRequestRefused.self) {
            _ = try await client.post(url: "http://localhost:\(server.port)/r/x", body: Array("{}".utf8),
                                      traceHeaders: [:], timeout: .seconds(60))
        }
        await server.waitForFinishedConnections(server.snapshot.connections)
        #expect(server.snapshot.bytes == 0)
        try await client.shutdown()
    }

    @Test func theExecutorMakesItAFinalRefusalThatIsNotAnAttempt() async throws {
        let server = try RecordingServer()
        defer { server.stop() }
        let client = DariClient(concurrency: 2, policy: hostNamePolicy(["localhost:\(server.port)"]))
        let sleeps = SleepRecorder()
        let executor = ResumeExecutor(transport: client, policy: RetryPolicy(maxAttempts: 3), requestTimeout: .seconds(10),
                                      sleep: sleeps.sleep, randomUnit: { 0.5 })
        let request = ResumeRequest(resumeURL: "http://localhost:\(server.port)/public/send-user-signal/x",
                                    variablesJSON: Array("{}".utf8))
        let result = try await executor.execute(request)
        #expect(result.kind == .refused)
        #expect(result.attempts == 0)
        #expect(result.httpStatus == nil)
        #expect(result.detail?.contains("loopback") == true, "\(String(describing: result.detail))")
        #expect(sleeps.durations.isEmpty)
        await server.waitForFinishedConnections(server.snapshot.connections)
        #expect(server.snapshot.bytes == 0)
        try await client.shutdown()
    }
}
