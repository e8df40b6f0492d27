import TestSupport
import DariBridge
import FakeDari
import Foundation
import Logging
import RabbitMQ
import Testing

/// Whoever can publish to the input queue controls every property and header.
/// Each case is published with the raw publisher (bytes librabbitmq would not
/// encode) through the real broker to the in-process worker. Every message must
/// get a normal outcome (succeeded, or failed with a clear error), the worker
/// must not crash or reconnect, and every message must be acked.
@Suite(.serialized) struct HostilePropertiesTests {
    static let maxAttempts = 3

    /// Publishes `cases`, waits for their outcomes, checks each, returns the harness's
    /// FakeDari requests by id and the captured log lines.
    @discardableResult
    func run(_ cases: [HostileCase]) async throws -> (requests: [String: [FakeDari.RecordedRequest]], log: [String]) {
        let (logger, store) = CapturingLogHandler.logger(level: .debug)
        let h = try await Harness(maxAttempts: Self.maxAttempts, logger: logger)
        h.startWorker()
        let url = try Harness.brokerURL
        let raw = try RawAMQPPublisher(port: url.port, user: url.user, password: url.password)
        for c in cases {
            let body = ResumeRequest.messageBody(resumeURL: h.url(c.id), variablesJSON: Array(#"{"case":"\#(c.id)"}"#.utf8))
            let result = try raw.publish(routingKey: h.config.queue, properties: c.properties, body: body)
            #expect(result == .acked, "\(c.id): the broker took the publish (\(result))")
        }
        raw.close()
        let got = await h.waitForOutcomes(cases.count, timeout: .seconds(30))
        try await Task.sleep(for: .milliseconds(300))  // would expose extra outcomes
        let reconnects = h.broker.reconnects.load(ordering: .relaxed)
        let all = h.received
        var requests: [String: [FakeDari.RecordedRequest]] = [:]
        for c in cases { requests[c.id] = h.dari.requests(id: c.id) }
        let left = await h.stop()
        #expect(got.count == cases.count, "every message got an outcome: \(got.count) of \(cases.count)")
        #expect(all.count == cases.count, "one outcome per message")
        #expect(reconnects == 0, "the worker never lost its connection over a message (\(reconnects) reconnects)")
        #expect(left == 0, "every message was acked (\(left.map { "\($0)" } ?? "?") left on the queue)")
        for c in cases {
            let outcomes = all.filter { $0.body?.resume_workflow_url == h.url(c.id) }
            #expect(outcomes.count == 1, "\(c.id): one outcome, got \(outcomes.count)")
            guard let o = outcomes.first, let b = o.body else { continue }
            Self.expectNormal(b, posts: requests[c.id]?.count ?? 0, case: c.id)
        }
        return (requests, store.all)
    }

    /// Succeeded after one POST, or failed with a named error and a detail; the
    /// attempts field stays within 0...maxAttempts whatever a header said.
    static func expectNormal(_ b: ReceivedOutcome.Body, posts: Int, case id: String) {
        #expect((0...maxAttempts).contains(b.attempts), "\(id): attempts \(b.attempts) out of 0...\(maxAttempts)")
        #expect(posts <= 1, "\(id): \(posts) POSTs")
        switch b.status {
        case "succeeded":
            #expect(b.error == nil && b.http_status == 200 && posts == 1, "\(id): \(b)")
        case "failed":
            #expect(b.error?.isEmpty == false && b.detail?.isEmpty == false, "\(id): a failed outcome names its error: \(b)")
        default:
            Issue.record("\(id): status \(b.status)")
        }
    }

    @Test func attemptsHeaderOfEveryTypeAndValue() async throws {
        try await run(HostileCase.everyValue(of: attemptsHeader, prefix: "att"))
    }

    @Test func deliveryCountHeaderOfEveryTypeAndValue() async throws {
        try await run(HostileCase.everyValue(of: "x-delivery-count", prefix: "dc"))
    }

    @Test func traceparentOfEveryTypeAndMalformed() async throws {
        let cases = HostileCases.traceparents
        let (requests, _) = try await run(cases)
        for c in cases {
            guard let r = requests[c.id]?.first else { continue }
            #expect(r.header("X-Injected") == nil, "\(c.id): no header injected")
            let tp = r.header("traceparent")
            #expect(tp == nil || tp == HostileCases.validTraceparent, "\(c.id): traceparent passed on only when well-formed: \(tp ?? "")")
        }
        #expect(requests["tp-valid"]?.first?.header("traceparent") == HostileCases.validTraceparent, "a well-formed traceparent is still passed on")
    }

    @Test func emptyDuplicateLongAndNonUTF8HeaderKeys() async throws {
        try await run(HostileCases.keys)
    }

    @Test func nestedTablesAndHugeHeaderValues() async throws {
        try await run(HostileCases.nesting)
    }

    /// 20,000 nested arrays and 15,000 nested tables: what frame_max allows.
    /// (On the consume path of librabbitmq's amqp_read_message this overflowed
    /// the AMQP thread's stack: SIGSEGV, the whole process gone.)
    @Test func nestingAsDeepAsOneFrameAllows() async throws {
        try await run(HostileCases.deepNesting)
    }

    /// message_id, correlation_id and reply_to with newlines, NUL, escape codes
    /// and invalid UTF-8: the outcome arrives and no log line carries a raw
    /// newline, carriage return, NUL or escape from the input (no forged lines).
    @Test func propertyStringsWithControlCharactersForgeNoLogLines() async throws {
        let (_, log) = try await run(HostileCases.properties)
        #expect(!log.isEmpty, "the worker logged at debug (one line per message)")
        for line in log {
            let forged = line.contains("\n") || line.contains("\r") || line.contains("\u{0}") || line.contains("\u{1B}")
            #expect(!forged, "a log line carries a raw control character from the input: \(line.debugDescription)")
        }
        #expect(log.contains { $0.contains("FORGED") }, "the hostile values were logged (escaped), so the check above saw them")
    }

    /// The built executable: poison headers must not kill the process:
    /// x-dari-attempts = Int64.min (once a trap on integer overflow after the
    /// POST) and 20,000 nested arrays (once a stack overflow in librabbitmq).
    @Test func poisonHeadersDoNotKillTheProcess() async throws {
        let h = try await Harness(maxAttempts: Self.maxAttempts)
        let worker = try WorkerProcess(environment: WorkerProcess.environment(for: h, extra: ["DARI_BRIDGE_MAX_ATTEMPTS": "\(Self.maxAttempts)"]))
        let url = try Harness.brokerURL
        let raw = try RawAMQPPublisher(port: url.port, user: url.user, password: url.password)
        let poisons = [
            HostileCase("poison-attempts", headers: RawTable([(Array(attemptsHeader.utf8), .int64(.min))])),
            HostileCase("poison-nesting", headers: RawTable(["n": .nestedArrays(depth: 20_000)])),
        ]
        var published: [RawAMQPPublisher.PublishResult] = []
        for p in poisons {
            let body = ResumeRequest.messageBody(resumeURL: h.url(p.id), variablesJSON: Array(#"{"a":1}"#.utf8))
            published.append(try raw.publish(routingKey: h.config.queue, properties: p.properties, body: body))
        }
        try await h.publish(id: "after-poison")
        raw.close()
        let got = await h.waitForOutcomes(3, timeout: .seconds(30))
        try await Task.sleep(for: .milliseconds(500))
        let alive = worker.process.isRunning
        worker.signal(SIGTERM)
        let status = await worker.waitForExit(timeout: .seconds(30))
        let posts = poisons.map { h.dari.requestCount(id: $0.id) }
        let left = await h.stop()
        #expect(published == [.acked, .acked])
        #expect(alive, "the worker process survived the poison headers: \(worker.log)")
        #expect(status == 0, "and exits 0 on SIGTERM: \(worker.log)")
        #expect(got.count == 3, "the poison messages and the next one got outcomes: \(got.map(\.text))")
        for (p, n) in zip(poisons, posts) {
            let o = got.first { $0.body?.resume_workflow_url == h.url(p.id) }?.body
            #expect(o != nil, "\(p.id) got an outcome")
            if let o { Self.expectNormal(o, posts: n, case: p.id) }
        }
        #expect(got.first { $0.messageId == "after-poison" }?.body?.status == "succeeded")
        #expect(left == 0, "all acked")
    }
}
