import TestSupport
import Foundation
import Synchronization
import Testing
@testable import DariBridge


/// Stands in for `Task.sleep`: records the requested durations and returns at once.
final class SleepRecorder: Sendable {
    private let recorded = Mutex<[Duration]>([])

    var durations: [Duration] { recorded.withLock { $0 } }

    var sleep: @Sendable (Duration) async throws -> Void {
        { [self] duration in self.recorded.withLock { $0.append(duration) } }
    }
}

private let fixedNow = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z
private let resumeURL = "https://api.usedari.com/public/send-user-signal/abc"
private let request = ResumeRequest(resumeURL: resumeURL, variablesJSON: Array(#"{"a":1}"#.utf8))

private func makeExecutor(
    _ transport: any DariTransport,
    policy: RetryPolicy = RetryPolicy(maxAttempts: 6, initialBackoff: .milliseconds(500), maxBackoff: .seconds(30), maxRetryAfter: .seconds(60)),
    sleeps: SleepRecorder,
    randomUnit: Double = 0.5
) -> ResumeExecutor {
    ResumeExecutor(transport: transport, policy: policy, requestTimeout: .milliseconds(1234),
                   sleep: sleeps.sleep, randomUnit: { randomUnit }, now: { fixedNow })
}

/// |a - b| <= 1 ms
private func close(_ a: Duration, _ b: Duration) -> Bool { max(a - b, b - a) <= .milliseconds(1) }

@Suite("ResumeExecutor")
struct ResumeExecutorTests {
    @Test func succeedsOnFirstTry() async throws {
        let body = Array(#"{"status":"resumed","n":12345678901234567890}"#.utf8)
        let transport = ScriptedTransport([.respond(DariResponse(status: 200, body: body))])
        let sleeps = SleepRecorder()
        let result = try await makeExecutor(transport, sleeps: sleeps).execute(request)
        #expect(result.kind == .succeeded)
        #expect(result.attempts == 1)
        #expect(result.httpStatus == 200)
        #expect(result.responseJSON == body)
        #expect(result.detail == nil)
        #expect(sleeps.durations.isEmpty)
        #expect(transport.calls.count == 1)
    }

    @Test func anyTwoHundredIsSuccess() async throws {
        let transport = ScriptedTransport([.respond(DariResponse(status: 204))])
        let result = try await makeExecutor(transport, sleeps: SleepRecorder()).execute(request)
        #expect(result.kind == .succeeded)
        #expect(result.httpStatus == 204)
        #expect(result.responseJSON == nil)  // empty body is not JSON
    }

    @Test func retriesServiceUnavailableWithJitteredBackoff() async throws {
        let transport = ScriptedTransport(statuses: [503, 503, 200])
        let sleeps = SleepRecorder()
        let policy = RetryPolicy(maxAttempts: 6, initialBackoff: .milliseconds(500), maxBackoff: .seconds(30))
        let result = try await makeExecutor(transport, policy: policy, sleeps: sleeps, randomUnit: 0.5).execute(request)
        #expect(result.kind == .succeeded)
        #expect(result.attempts == 3)
        #expect(result.httpStatus == 200)
        #expect(transport.calls.count == 3)
        let slept = sleeps.durations
        try #require(slept.count == 2)
        // Ceilings 500 ms then 1 s, times the fixed random unit 0.5.
        #expect(slept[0] == policy.delay(afterAttempt: 1, retryAfter: nil, randomUnit: { 0.5 }))
        #expect(slept[1] == policy.delay(afterAttempt: 2, retryAfter: nil, randomUnit: { 0.5 }))
        #expect(close(slept[0], .milliseconds(250)), "\(slept[0])")
        #expect(close(slept[1], .milliseconds(500)), "\(slept[1])")
    }

    @Test func jitterUsesTheInjectedRandomUnit() async throws {
        let transport = ScriptedTransport(statuses: [502, 504, 500, 200])
        let sleeps = SleepRecorder()
        let result = try await makeExecutor(transport, sleeps: sleeps, randomUnit: 0.25).execute(request)
        #expect(result.attempts == 4)
        let slept = sleeps.durations
        try #require(slept.count == 3)
        #expect(close(slept[0], .milliseconds(125)))
        #expect(close(slept[1], .milliseconds(250)))
        #expect(close(slept[2], .milliseconds(500)))
    }

    @Test func retryAfterSecondsIsHonouredExactly() async throws {
        let transport = ScriptedTransport([
            .respond(DariResponse(status: 429, body: Array(#"{"detail":"slow down"}"#.utf8), retryAfter: "1")),
            .respond(DariResponse(status: 200, body: Array("{}".utf8))),
        ])
        let sleeps = SleepRecorder()
        let result = try await makeExecutor(transport, sleeps: sleeps, randomUnit: 0.5).execute(request)
        #expect(result.kind == .succeeded)
        #expect(result.attempts == 2)
        #expect(sleeps.durations == [.seconds(1)])
    }

    @Test func retryAfterIsCappedByMaxRetryAfter() async throws {
        let transport = ScriptedTransport([
            .respond(DariResponse(status: 429, retryAfter: "3600")),
            .respond(DariResponse(status: 200)),
        ])
        let sleeps = SleepRecorder()
        let policy = RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(500), maxBackoff: .seconds(30), maxRetryAfter: .seconds(7))
        _ = try await makeExecutor(transport, policy: policy, sleeps: sleeps).execute(request)
        #expect(sleeps.durations == [.seconds(7)])
    }

    @Test func retryAfterHTTPDateIsRelativeToInjectedNow() async throws {
        // fixedNow + 5 s = Fri, 15 Jan 2027 08:00:05 GMT
        let transport = ScriptedTransport([
            .respond(DariResponse(status: 503, retryAfter: "Fri, 15 Jan 2027 08:00:05 GMT")),
            .respond(DariResponse(status: 200)),
        ])
        let sleeps = SleepRecorder()
        _ = try await makeExecutor(transport, sleeps: sleeps).execute(request)
        #expect(sleeps.durations == [.seconds(5)])
    }

    @Test func garbageRetryAfterFallsBackToBackoff() async throws {
        let transport = ScriptedTransport([
            .respond(DariResponse(status: 503, retryAfter: "soon")),
            .respond(DariResponse(status: 200)),
        ])
        let sleeps = SleepRecorder()
        _ = try await makeExecutor(transport, sleeps: sleeps, randomUnit: 0.5).execute(request)
        #expect(sleeps.durations.count == 1)
        #expect(close(sleeps.durations.first ?? .zero, .milliseconds(250)))
    }

    @Test func notFoundIsFinalWithDariDetailVerbatim() async throws {
        let transport = ScriptedTransport([
            .respond(DariResponse(status: 404, body: Array(#"{"detail":"Signal not found"}"#.utf8))),
            .respond(DariResponse(status: 200)),
        ])
        let sleeps = SleepRecorder()
        let result = try await makeExecutor(transport, sleeps: sleeps).execute(request)
        #expect(result.kind == .dariError)
        #expect(result.attempts == 1)
        #expect(result.httpStatus == 404)
        #expect(result.detail == "Signal not found")
        #expect(result.responseJSON == nil)
        #expect(sleeps.durations.isEmpty)
        #expect(transport.calls.count == 1)
    }

    @Test(arguments: [301, 302, 400, 401, 403, 409, 422, 501])
    func nonRetryableStatusIsFinal(_ status: Int) async throws {
        let transport = ScriptedTransport([.respond(DariResponse(status: status, body: Array("<html>moved</html>".utf8))),
                                           .respond(DariResponse(status: 200))])
        let sleeps = SleepRecorder()
        let result = try await makeExecutor(transport, sleeps: sleeps).execute(request)
        #expect(result.kind == .dariError)
        #expect(result.attempts == 1)
        #expect(result.httpStatus == status)
        #expect(result.detail == "Dari request failed with status \(status)")
        #expect(sleeps.durations.isEmpty)
        #expect(transport.calls.count == 1)
    }

    @Test func alwaysUnavailableExhaustsRetries() async throws {
        let transport = ScriptedTransport([.respond(DariResponse(status: 503, body: Array(#"{"detail":"maintenance"}"#.utf8)))])
        let sleeps = SleepRecorder()
        let policy = RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(100), maxBackoff: .seconds(1))
        let result = try await makeExecutor(transport, policy: policy, sleeps: sleeps).execute(request)
        #expect(result.kind == .retriesExhausted)
        #expect(result.attempts == 3)
        #expect(result.httpStatus == 503)
        #expect(result.responseJSON == nil)
        let detail = try #require(result.detail)
        #expect(detail.contains("3 attempts"), "\(detail)")
        #expect(detail.contains("maintenance"), "\(detail)")
        #expect(transport.calls.count == 3)
        #expect(sleeps.durations.count == 2)  // no sleep after the last attempt
    }

    @Test func singleAttemptPolicyNeverRetries() async throws {
        let transport = ScriptedTransport(statuses: [503, 200])
        let sleeps = SleepRecorder()
        let result = try await makeExecutor(transport, policy: RetryPolicy(maxAttempts: 1), sleeps: sleeps).execute(request)
        #expect(result.kind == .retriesExhausted)
        #expect(result.attempts == 1)
        #expect(result.detail?.contains("1 attempt") == true)
        #expect(sleeps.durations.isEmpty)
    }

    @Test func transportErrorsAreRetriedThenExhausted() async throws {
        let transport = ScriptedTransport([.fail("connection refused")])
        let sleeps = SleepRecorder()
        let policy = RetryPolicy(maxAttempts: 4, initialBackoff: .milliseconds(200), maxBackoff: .seconds(10))
        let result = try await makeExecutor(transport, policy: policy, sleeps: sleeps, randomUnit: 0.5).execute(request)
        #expect(result.kind == .retriesExhausted)
        #expect(result.attempts == 4)
        #expect(result.httpStatus == nil)
        let detail = try #require(result.detail)
        #expect(detail.contains("4 attempts"), "\(detail)")
        #expect(detail.contains("connection refused"), "\(detail)")
        #expect(transport.calls.count == 4)
        let slept = sleeps.durations
        try #require(slept.count == 3)
        #expect(close(slept[0], .milliseconds(100)))
        #expect(close(slept[1], .milliseconds(200)))
        #expect(close(slept[2], .milliseconds(400)))
    }

    @Test func transportErrorThenSuccess() async throws {
        let transport = ScriptedTransport([.fail("request timed out"), .respond(DariResponse(status: 200, body: Array("[1]".utf8)))])
        let result = try await makeExecutor(transport, sleeps: SleepRecorder()).execute(request)
        #expect(result.kind == .succeeded)
        #expect(result.attempts == 2)
        #expect(result.responseJSON == Array("[1]".utf8))
    }

    @Test(arguments: ["not json", "{\"ok\":", "", "{\"ok\":true} trailing"])
    func nonJSONSuccessBodyGivesNoResponseJSON(_ body: String) async throws {
        let transport = ScriptedTransport([.respond(DariResponse(status: 200, body: Array(body.utf8)))])
        let result = try await makeExecutor(transport, sleeps: SleepRecorder()).execute(request)
        #expect(result.kind == .succeeded)
        #expect(result.attempts == 1)
        #expect(result.responseJSON == nil)
    }

    @Test func sendsVariablesVerbatimWithTraceparentOnEveryAttempt() async throws {
        let raw = "{ \"big\" : 12345678901234567890, \"t\":\"caf\\u00e9 😀\", \"n\":[1.50, -0.0, {}] }"
        let req = ResumeRequest(resumeURL: resumeURL, variablesJSON: Array(raw.utf8))
        let transport = ScriptedTransport(statuses: [500, 200])
        let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let result = try await makeExecutor(transport, sleeps: SleepRecorder()).execute(req, traceHeaders: ["traceparent": trace])
        #expect(result.attempts == 2)
        let calls = transport.calls
        try #require(calls.count == 2)
        for call in calls {
            #expect(call.body == Array(("{\"variables\":" + raw + "}").utf8))
            #expect(call.url == resumeURL)
            #expect(call.traceparent == trace)
            #expect(call.timeout == .milliseconds(1234))
        }
    }

    @Test func noTraceparentIsPassedAsNil() async throws {
        let transport = ScriptedTransport(statuses: [200])
        _ = try await makeExecutor(transport, sleeps: SleepRecorder()).execute(request)
        #expect(transport.calls.first?.traceparent == nil)
    }

    // Delay-queue hand-off (long waits are not held in memory).

    @Test func longRetryAfterIsDeferredInsteadOfSlept() async throws {
        let transport = ScriptedTransport([.respond(DariResponse(status: 429, retryAfter: "45")), .respond(DariResponse(status: 200))])
        let sleeps = SleepRecorder()
        var executor = makeExecutor(transport, sleeps: sleeps)
        executor.maxInMemoryWait = .seconds(30)
        let result = try await executor.execute(request)
        #expect(result.kind == .deferred(.seconds(45)))
        #expect(result.attempts == 1)
        #expect(result.httpStatus == 429)
        #expect(sleeps.durations.isEmpty)
        #expect(transport.calls.count == 1)
    }

    @Test func priorAttemptsContinueTheCountAndTheBackoff() async throws {
        let transport = ScriptedTransport(statuses: [503, 200])
        let sleeps = SleepRecorder()
        let result = try await makeExecutor(transport, sleeps: sleeps, randomUnit: 0.5).execute(request, priorAttempts: 2)
        #expect(result.kind == .succeeded)
        #expect(result.attempts == 4)
        #expect(transport.calls.count == 2)
        // After attempt 3 the ceiling is 500 ms * 2^2 = 2 s; times 0.5.
        #expect(sleeps.durations.count == 1)
        #expect(close(sleeps.durations.first ?? .zero, .seconds(1)))
    }

    @Test func noAttemptsLeftMeansNoCall() async throws {
        let transport = ScriptedTransport(statuses: [200])
        let result = try await makeExecutor(transport, policy: RetryPolicy(maxAttempts: 3), sleeps: SleepRecorder())
            .execute(request, priorAttempts: 3)
        #expect(result.kind == .retriesExhausted)
        #expect(result.attempts == 3)
        #expect(transport.calls.isEmpty)
    }

    @Test func cancellationDuringBackoffThrowsCancellationError() async throws {
        let transport = ScriptedTransport(statuses: [503])
        let (entered, enteredContinuation) = AsyncStream<Duration>.makeStream()
        let executor = ResumeExecutor(
            transport: transport, policy: RetryPolicy(), requestTimeout: .seconds(1),
            sleep: { duration in
                enteredContinuation.yield(duration)
                // Only ever ends by cancellation (the test cancels as soon as it gets here).
                try await Task.sleep(for: .seconds(3600))
            },
            randomUnit: { 0.5 }, now: { fixedNow })
        let task = Task { try await executor.execute(request) }
        var iterator = entered.makeAsyncIterator()
        let firstSleep = await iterator.next()
        #expect(firstSleep != nil)
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(transport.calls.count == 1)
    }

    @Test func cancelledBeforeTheBackoffDoesNotSleep() async throws {
        // The task is already cancelled when the first attempt fails: no sleep, CancellationError.
        let transport = ScriptedTransport(statuses: [503])
        let sleeps = SleepRecorder()
        let executor = makeExecutor(transport, sleeps: sleeps)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await executor.execute(request)
        }
        await #expect(throws: CancellationError.self) { try await task.value }
        #expect(sleeps.durations.isEmpty)
    }

    @Test func transportCancellationPropagates() async throws {
        struct CancellingTransport: DariTransport {
            func post(url: String, body: [UInt8], traceHeaders: TraceHeaders, timeout: Duration) async throws -> DariResponse {
                throw CancellationError()
            }
        }
        let sleeps = SleepRecorder()
        await #expect(throws: CancellationError.self) {
            _ = try await makeExecutor(CancellingTransport(), sleeps: sleeps).execute(request)
        }
        #expect(sleeps.durations.isEmpty)
    }
}
