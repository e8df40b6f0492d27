import DariBridge
import DariBridgeApp
import FakeDari
import Foundation
import RabbitMQ
import TestSupport
import Testing

/// The readiness watchdog against the real broker. The broker-side channel
/// process of the worker's consumer is suspended (`sys:suspend` through
/// `rabbitmqctl eval`): the queue still hands it deliveries up to the prefetch,
/// nothing reaches the worker, the rest stays ready on the queue, and the
/// connection (its reader and heartbeats live in other processes) looks
/// healthy. Short watchdog settings; each test resumes what it suspended.
@Suite(.serialized) struct StallWatchdogTests {
    /// A worker with prefetch 2 that handled one message, then has its consumer's
    /// channel suspended, then gets six messages: two wait in the suspended
    /// channel, four ready on the queue.
    func stalledWorker(_ queueType: String, autoResume: TestBrokerProcesses.AutoResume) async throws -> (Harness, CapturingLogHandler.Store, [String]) {
        let (logger, log) = CapturingLogHandler.logger(level: .info)
        let h = try await Harness(concurrency: 2, logger: logger, inputQueueArguments: ["x-queue-type": .longString(Array(queueType.utf8))]) { c in
            c.prefetch = 2
            c.stallCheckIntervalMs = 200
            c.stallTimeoutMs = 1_000
        }
        h.startWorker()
        #expect(await eventually { h.broker.isReady })
        try await h.publish(id: "warm")
        #expect(await h.waitForOutcomes(1).count == 1)
        let suspended = try TestBrokerProcesses.suspendConsumerChannels(queue: h.config.queue, autoResume: autoResume)
        for i in 0..<6 { try await h.publish(id: "s\(i)") }
        return (h, log, suspended)
    }

    @Test(arguments: ["classic", "quorum"])
    func aChannelThatNeverAnswersIsReplacedByANewConnection(queueType: String) async throws {
        let (h, log, suspended) = try await stalledWorker(queueType, autoResume: .never)
        defer { TestBrokerProcesses.resume(suspended) }
        #expect(suspended.count == 1)
        #expect(suspended.allSatisfy(TestBrokerProcesses.isSuspended))
        // Not ready because of the stall, before any reconnect (the cancel waits 2 s for its answer).
        #expect(await eventually { !h.broker.isReady && h.broker.reconnects.load(ordering: .relaxed) == 0 })
        #expect(await eventually { log.all.contains { $0.hasPrefix("warning consumer stalled: messages wait on the queue") } })
        #expect(h.broker.stalls.load(ordering: .relaxed) >= 1)
        // The cancel got no answer: the connection counts as failed and the worker
        // reconnects; the new consumer gets the four ready messages while the old
        // channel is still suspended.
        let beforeResume = await h.waitForOutcomes(5, timeout: .seconds(60))
        #expect(beforeResume.count >= 5)
        #expect(h.broker.reconnects.load(ordering: .relaxed) >= 1)
        #expect(await eventually { h.broker.isReady })
        #expect(log.all.contains { $0.hasPrefix("info deliveries flow again") })
        // The two the suspended channel held go back to the queue once it ends.
        TestBrokerProcesses.resume(suspended)
        let all = await h.waitForOutcomes(7, timeout: .seconds(90))
        #expect(Set(all.compactMap(\.messageId)) == Set(["warm"] + (0..<6).map { "s\($0)" }))
        #expect(all.allSatisfy { $0.body?.status == "succeeded" })
        #expect(await eventually { h.broker.isReady })
        await h.stop()
    }

    @Test(arguments: ["classic", "quorum"])
    func aChannelThatAnswersTheCancelGetsANewConsumerOnTheSameConnection(queueType: String) async throws {
        let (h, log, suspended) = try await stalledWorker(queueType, autoResume: .onCancel)
        defer { TestBrokerProcesses.resume(suspended) }
        #expect(suspended.count == 1)
        #expect(await eventually { !h.broker.isReady })
        #expect(await eventually { log.all.contains { $0.hasPrefix("warning consumer stalled: messages wait on the queue") } })
        // The channel resumes 0.5 s after the cancel reached it: it delivers the two
        // it held, answers the cancel, and the worker consumes again on the same connection.
        let all = await h.waitForOutcomes(7, timeout: .seconds(60))
        #expect(Set(all.compactMap(\.messageId)) == Set(["warm"] + (0..<6).map { "s\($0)" }))
        #expect(all.allSatisfy { $0.body?.status == "succeeded" })
        #expect(await eventually { h.broker.isReady })
        #expect(h.broker.stalls.load(ordering: .relaxed) == 1)
        #expect(h.broker.reconnects.load(ordering: .relaxed) == 0)
        #expect(!log.all.contains { $0.contains("connection lost") })
        #expect(log.all.contains { $0.hasPrefix("info deliveries flow again") })
        await h.stop()
    }

    @Test func aQueueThatAnswersNoCheckCountsAsAStall() async throws {
        // The classic queue's own process is suspended while the consumer holds its
        // prefetch (Dari takes 2 s per message) and more messages are ready: once the
        // two in flight are acked the consumer has room, nothing comes, and the
        // passive declare that asks for the count gets no answer (the queue process
        // answers it): the check's timeout counts as a stall, the connection is
        // replaced, and once the queue is resumed every message is handled.
        let (logger, log) = CapturingLogHandler.logger(level: .info)
        let h = try await Harness(concurrency: 2, dariDefault: FakeDari.Reply(status: 200, body: #"{"ok":true}"#, delay: .seconds(2)),
                                  logger: logger) { c in
            c.prefetch = 2
            c.stallCheckIntervalMs = 200
            c.stallTimeoutMs = 1_000
        }
        h.startWorker()
        #expect(await eventually { h.broker.isReady })
        for i in 0..<20 { try await h.publish(id: "q\(i)") }
        let suspended = try TestBrokerProcesses.suspendQueue(h.config.queue)
        defer { TestBrokerProcesses.resume(suspended) }
        #expect(suspended.count == 1)
        #expect(await eventually(timeout: .seconds(60)) { log.all.contains { $0.hasPrefix("warning consumer stalled: the broker did not answer a check of the queue") } })
        #expect(h.broker.stalls.load(ordering: .relaxed) >= 1)
        #expect(!h.broker.isReady)
        TestBrokerProcesses.resume(suspended)
        let all = await h.waitForOutcomes(20, timeout: .seconds(120))
        #expect(Set(all.compactMap(\.messageId)) == Set((0..<20).map { "q\($0)" }))
        #expect(all.allSatisfy { $0.body?.status == "succeeded" })
        #expect(await eventually { h.broker.isReady })
        await h.stop()
    }

    @Test func idleOrFullIsNotAStall() async throws {
        // Dari takes 1 s per message: with concurrency and prefetch 2 the consumer
        // holds its full prefetch while messages wait on the queue, for longer than
        // the stall timeout, again and again: no room, so no stall. Before that,
        // idling with an empty queue for many checks: nothing ready, no stall.
        let (logger, log) = CapturingLogHandler.logger(level: .info)
        let h = try await Harness(concurrency: 2, dariDefault: FakeDari.Reply(status: 200, body: #"{"ok":true}"#, delay: .seconds(1)),
                                  logger: logger) { c in
            c.prefetch = 2
            c.stallCheckIntervalMs = 100
            c.stallTimeoutMs = 300
        }
        h.startWorker()
        #expect(await eventually { h.broker.isReady })
        try await Task.sleep(for: .seconds(1))
        for i in 0..<6 { try await h.publish(id: "f\(i)") }
        #expect(await h.waitForOutcomes(6).count == 6)
        #expect(h.broker.isReady)
        #expect(h.broker.stalls.load(ordering: .relaxed) == 0)
        #expect(!log.all.contains { $0.contains("stalled") })
        await h.stop()
    }
}

/// Polls `condition` every 20 ms until it holds (true) or `timeout` passed (false).
func eventually(timeout: Duration = .seconds(30), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}
