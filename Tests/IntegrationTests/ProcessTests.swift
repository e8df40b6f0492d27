import DariBridge
import FakeDari
import Foundation
import RabbitMQ
import Testing

/// The executable itself: SIGTERM drains, bad configuration fails fast.
@Suite(.serialized) struct ProcessTests {
    func queueDepth(_ h: Harness) async throws -> UInt32 {
        let c = try await AMQPConnection.connect(to: h.config.amqpURL)
        let n = try await c.declareQueue(h.config.queue, durable: true).messageCount
        await c.close()
        return n
    }

    @Test func sigtermFinishesInFlightWorkAndExitsZero() async throws {
        let h = try await Harness(dariDefault: FakeDari.Reply(status: 200, body: #"{"ok":true}"#, delay: .milliseconds(1500)))
        let worker = try WorkerProcess(environment: WorkerProcess.environment(for: h, extra: ["DARI_BRIDGE_CONCURRENCY": "10"]))
        for i in 0..<30 { try await h.publish(id: "t\(i)") }
        let deadline = ContinuousClock.now + .seconds(30)
        while h.dari.requestCount < 10 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        worker.signal(SIGTERM)
        let status = await worker.waitForExit(timeout: .seconds(30))
        try await Task.sleep(for: .milliseconds(300))
        let outcomes = h.received.count
        let left = try await queueDepth(h)
        await h.stop()
        #expect(status == 0, "\(worker.log)")
        #expect(outcomes >= 10, "in-flight messages finish within the drain deadline")
        #expect(outcomes + Int(left) == 30, "every message has an outcome or is back on the queue (outcomes \(outcomes), queued \(left))")
        #expect(Set(h.received.compactMap(\.messageId)).count == outcomes)
        #expect(worker.log.contains("shutting down"))
    }

    @Test func drainDeadlineLeavesUnfinishedMessagesOnTheQueue() async throws {
        let h = try await Harness(dariDefault: FakeDari.Reply(status: 200, body: #"{"ok":true}"#, delay: .seconds(20)))
        let worker = try WorkerProcess(environment: WorkerProcess.environment(for: h, extra: ["DARI_BRIDGE_CONCURRENCY": "8", "DARI_BRIDGE_DRAIN_TIMEOUT_MS": "500"]))
        for i in 0..<20 { try await h.publish(id: "d\(i)") }
        let deadline = ContinuousClock.now + .seconds(30)
        while h.dari.requestCount < 8 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let start = ContinuousClock.now
        worker.signal(SIGINT)
        let status = await worker.waitForExit(timeout: .seconds(15))
        let took = ContinuousClock.now - start
        try await Task.sleep(for: .milliseconds(300))
        let left = try await queueDepth(h)
        await h.stop()
        #expect(status == 0, "\(worker.log)")
        #expect(took < .seconds(10))
        #expect(h.received.count == 0)
        #expect(left == 20, "nothing acked without an outcome; everything back on the queue")
        #expect(worker.log.contains("drain deadline passed"))
    }

    @Test(arguments: [
        (["run", "--concurrency", "0"], "DARI_BRIDGE_CONCURRENCY"),
        (["run", "--amqp-url", "http://nope"], "AMQP_URL"),
        (["run", "--no-such-option"], "--no-such-option"),
        (["run", "--max-attempts", "abc"], "DARI_BRIDGE_MAX_ATTEMPTS"),
    ])
    func badConfigurationExitsAtOnceNamingTheSetting(_ args: [String], _ named: String) async throws {
        let p = try WorkerProcess(arguments: args, environment: [:])
        let status = await p.waitForExit(timeout: .seconds(10))
        #expect(status != nil && status != 0)
        let lines = p.log.split(separator: "\n")
        #expect(lines.count == 1, "\(p.log)")
        #expect(p.log.contains(named))
    }

    @Test func badEnvironmentValueExitsNamingTheVariable() async throws {
        let p = try WorkerProcess(arguments: [], environment: ["DARI_BRIDGE_HTTP_PORT": "99999"])
        let status = await p.waitForExit(timeout: .seconds(10))
        #expect(status == 2)
        #expect(p.log.contains("DARI_BRIDGE_HTTP_PORT"))
    }

    @Test func helpDocumentsEverySetting() async throws {
        let p = try WorkerProcess(arguments: ["--help"], environment: [:])
        #expect(await p.waitForExit(timeout: .seconds(10)) == 0)
        for name in ["AMQP_URL", "DARI_BRIDGE_QUEUE", "DARI_BRIDGE_RESULTS_EXCHANGE", "DARI_BRIDGE_ALLOWED_HOSTS", "DARI_BRIDGE_ALLOWED_PATH_PREFIXES",
                     "DARI_BRIDGE_ALLOW_INSECURE_HTTP", "DARI_BRIDGE_CONCURRENCY", "DARI_BRIDGE_MAX_ATTEMPTS", "DARI_BRIDGE_INITIAL_BACKOFF_MS",
                     "DARI_BRIDGE_MAX_BACKOFF_MS", "DARI_BRIDGE_REQUEST_TIMEOUT_MS", "DARI_BRIDGE_HTTP_PORT", "DARI_BRIDGE_DRAIN_TIMEOUT_MS", "publish"] {
            #expect(p.log.contains(name), "\(name)")
        }
    }

    @Test func publishCommandWaitsForTheOutcome() async throws {
        let h = try await Harness()
        h.startWorker()
        let env = WorkerProcess.environment(for: h)
        let p = try WorkerProcess(arguments: ["publish", h.url("cli"), "--var", "user_response=approved", "--var", "note=ü \"q\"", "--wait", "--wait-timeout-s", "20"], environment: env)
        let status = await p.waitForExit(timeout: .seconds(30))
        await h.stop()
        #expect(status == 0, "\(p.log)")
        #expect(p.log.contains(#""status":"succeeded""#))
        let body = h.dari.requests(id: "cli").first.map { String(decoding: $0.body, as: UTF8.self) }
        #expect(body == #"{"variables":{"user_response":"approved","note":"ü \"q\""}}"#)
    }

    /// `publish` used to redeclare the input queue without arguments: against the worker's
    /// quorum queue (the default type) that is 406 PRECONDITION_FAILED. Now it checks the
    /// queue passively, as the worker does, and declares a missing one with the same type.
    @Test(arguments: [true, false]) func publishCommandUsesTheWorkersQuorumQueue(queueExists: Bool) async throws {
        let h = try await Harness(inputQueueArguments: ["x-queue-type": "quorum"])
        let env = WorkerProcess.environment(for: h)
        if !queueExists {
            _ = try await h.observer.deleteQueue(h.config.queue)
        }
        // No worker yet: with queueExists false, publish itself declares the queue (quorum, the default).
        let p = try WorkerProcess(arguments: ["publish", h.url("cli-quorum"), "--var", "ok=yes"], environment: env)
        let status = await p.waitForExit(timeout: .seconds(30))
        #expect(status == 0, "\(p.log)")
        h.startWorker()
        await h.waitForOutcomes(1)
        await h.stop()
        #expect(h.dari.requests(id: "cli-quorum").count == 1)
    }
}
