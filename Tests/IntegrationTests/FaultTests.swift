import DariBridge
import FakeDari
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import RabbitMQ
import Testing
import TestSupport

/// One fault scenario: FakeDari, a worker process against the fault broker,
/// a resilient observer. Prints what it saw: messages, outcomes, duplicates,
/// Dari requests.
final class FaultRig: Sendable {
    let dari: FakeDari
    let queue: String
    let exchange: String
    let observer: ResilientObserver
    let metricsPort = unusedPort()

    init(dariDelay: Duration) async throws {
        try FaultBroker.start()
        dari = try await FakeDari.start(defaultReply: FakeDari.Reply(status: 200, body: #"{"ok":true}"#, delay: dariDelay), eventLoopThreads: 2)
        let suffix = UUID().uuidString.prefix(8)
        queue = "faults.requests.\(suffix)"
        exchange = "faults.results.\(suffix)"
        observer = ResilientObserver(exchange: exchange)
        observer.start()
    }

    func startWorker(concurrency: Int = 16, extra: [String: String] = [:]) throws -> WorkerProcess {
        var env = [
            "AMQP_URL": FaultBroker.urlString,
            "DARI_BRIDGE_QUEUE": queue,
            // The rig's publisher declares the queue itself as a classic queue (as
            // many publishers do): a worker that re-creates a deleted queue must
            // declare it the same way, or the publisher's declare fails with 406.
            "DARI_BRIDGE_QUEUE_TYPE": "classic",
            "DARI_BRIDGE_RESULTS_EXCHANGE": exchange,
            "DARI_BRIDGE_ALLOWED_HOSTS": "127.0.0.1:\(dari.port)",
            "DARI_BRIDGE_ALLOW_INSECURE_HTTP": "true",
            "DARI_BRIDGE_CONCURRENCY": "\(concurrency)",
            "DARI_BRIDGE_HTTP_PORT": "\(metricsPort)",
            "DARI_BRIDGE_HTTP_HOST": "127.0.0.1",
            "DARI_BRIDGE_RECONNECT_INITIAL_MS": "200",
            "DARI_BRIDGE_RECONNECT_MAX_MS": "2000",
            "DARI_BRIDGE_HEARTBEAT_S": "5",
            "DARI_BRIDGE_LOG_LEVEL": "info",
        ]
        for (k, v) in extra { env[k] = v }
        return try WorkerProcess(environment: env)
    }

    /// Publishes persistent, confirmed messages m<prefix>0..n-1; retries a
    /// publish that fails (the broker may be restarting).
    func publish(_ n: Int, prefix: String = "m") async throws {
        var conn = try await AMQPConnection.connect(to: FaultBroker.url)
        var i = 0
        while i < n {
            do {
                try await conn.declareQueue(queue, durable: true)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for j in i..<min(n, i + 200) {
                        let body = ResumeRequest.messageBody(resumeURL: "http://127.0.0.1:\(dari.port)/public/send-user-signal/\(prefix)\(j)",
                                                             variablesJSON: Array(#"{"n":\#(j)}"#.utf8))
                        let c = conn
                        group.addTask {
                            try await c.publish(exchange: "", routingKey: self.queue, body: body,
                                                properties: AMQPProperties(messageId: "\(prefix)\(j)", persistent: true), mandatory: true)
                        }
                    }
                    try await group.waitForAll()
                }
                i = min(n, i + 200)
            } catch {
                await conn.close()
                try await Task.sleep(for: .milliseconds(300))
                conn = try await AMQPConnection.connect(to: FaultBroker.url)
            }
        }
        await conn.close()
    }

    func readyz() async -> Int? {
        guard let url = URL(string: "http://127.0.0.1:\(metricsPort)/readyz") else { return nil }
        guard let (_, response) = try? await URLSession.shared.data(from: url) else { return nil }
        return (response as? HTTPURLResponse)?.statusCode
    }

    func report(_ name: String, messages: Int) {
        print("FAULT \(name): messages=\(messages) outcomes=\(observer.distinct) duplicates=\(observer.duplicates) dari_requests=\(dari.requestCount) double_posts=\(dari.requestCount - observer.distinct)")
    }

    func finish(_ worker: WorkerProcess?) async -> Int32? {
        var status: Int32? = nil
        if let worker {
            worker.signal(SIGTERM)
            status = await worker.waitForExit(timeout: .seconds(30))
        }
        await observer.stop()
        if let c = try? await AMQPConnection.connect(to: FaultBroker.url) {
            _ = try? await c.deleteQueue(queue)
            await c.close()
        }
        if let c = try? await AMQPConnection.connect(to: FaultBroker.url) {
            _ = try? await c.deleteQueue(observer.queue)
            await c.close()
        }
        try? await dari.shutdown()
        return status
    }
}

extension BrokerFaultSuites {
@Suite(.serialized) struct FaultTests {
    @Test func brokerRestartWhileTwoThousandMessagesFlow() async throws {
        let rig = try await FaultRig(dariDelay: .milliseconds(40))
        try await rig.publish(2000)
        let worker = try rig.startWorker(concurrency: 16)
        _ = await rig.observer.waitForDistinct(300, timeout: .seconds(60))
        try FaultBroker.stop()
        try FaultBroker.start()
        let seen = await rig.observer.waitForDistinct(2000, timeout: .seconds(120))
        let alive = worker.process.isRunning
        rig.report("broker restart mid-stream", messages: 2000)
        let status = await rig.finish(worker)
        #expect(seen == 2000, "lost messages; worker log:\n\(worker.log.suffix(3000))")
        #expect(alive, "the worker exited")
        #expect(status == 0)
        #expect(worker.log.contains("reconnected to the broker"))
    }

    @Test func brokerStoppedForTwentySeconds() async throws {
        let rig = try await FaultRig(dariDelay: .milliseconds(5))
        try await rig.publish(200, prefix: "before")
        let worker = try rig.startWorker()
        #expect(await rig.observer.waitForDistinct(200, timeout: .seconds(60)) == 200)
        try FaultBroker.stop()
        try await Task.sleep(for: .seconds(20))
        let aliveDuringOutage = worker.process.isRunning
        let readyDuringOutage = await rig.readyz()
        try FaultBroker.start()
        try await rig.publish(200, prefix: "after")
        let seen = await rig.observer.waitForDistinct(400, timeout: .seconds(90))
        let readyAfter = await rig.readyz()
        rig.report("broker stopped 20 s", messages: 400)
        let status = await rig.finish(worker)
        #expect(seen == 400, "worker log:\n\(worker.log.suffix(3000))")
        #expect(aliveDuringOutage)
        #expect(readyDuringOutage == 503)
        #expect(readyAfter == 200)
        #expect(status == 0)
        let lostLines = worker.log.split(separator: "\n").filter { $0.contains("broker connection lost") }
        #expect(lostLines.count == 1, "the outage is logged once:\n\(worker.log.suffix(3000))")
    }

    @Test func workerStartsBeforeTheBroker() async throws {
        let rig = try await FaultRig(dariDelay: .milliseconds(5))
        try await rig.publish(10, prefix: "warm")  // declare the queue
        _ = await rig.observer.waitForDistinct(0, timeout: .zero)
        try FaultBroker.stop()
        let worker = try rig.startWorker()
        try await Task.sleep(for: .seconds(4))
        let alive = worker.process.isRunning
        let notReady = await rig.readyz()
        try FaultBroker.start()
        try await rig.publish(100, prefix: "late")
        let seen = await rig.observer.waitForDistinct(110, timeout: .seconds(60))
        rig.report("worker before broker", messages: 110)
        let status = await rig.finish(worker)
        #expect(alive, "the worker must not exit while the broker is down")
        #expect(notReady == 503)
        #expect(seen == 110, "worker log:\n\(worker.log.suffix(3000))")
        #expect(status == 0)
    }

    @Test func killNineMidStreamAndRestart() async throws {
        let rig = try await FaultRig(dariDelay: .milliseconds(20))
        try await rig.publish(1000)
        let first = try rig.startWorker(concurrency: 16)
        _ = await rig.observer.waitForDistinct(300, timeout: .seconds(60))
        first.signal(SIGKILL)
        _ = await first.waitForExit(timeout: .seconds(5))
        let second = try rig.startWorker(concurrency: 16)
        let seen = await rig.observer.waitForDistinct(1000, timeout: .seconds(90))
        rig.report("kill -9 and restart", messages: 1000)
        let status = await rig.finish(second)
        #expect(seen == 1000, "worker log:\n\(second.log.suffix(3000))")
        #expect(status == 0)
    }

    @Test func connectionClosedByTheBroker() async throws {
        let rig = try await FaultRig(dariDelay: .milliseconds(20))
        try await rig.publish(600)
        let worker = try rig.startWorker(concurrency: 16)
        _ = await rig.observer.waitForDistinct(100, timeout: .seconds(60))
        let listing = try FaultBroker.ctl("list_connections", "pid", "client_properties", "-q")
        let pids = listing.split(separator: "\n").filter { $0.contains("dari-bridge 0.1.0") }.compactMap { $0.split(separator: "\t").first.map(String.init) }
        #expect(!pids.isEmpty, "no dari-bridge connection listed:\n\(listing)")
        for pid in pids { _ = try FaultBroker.ctl("close_connection", pid, "closed by the fault test") }
        let seen = await rig.observer.waitForDistinct(600, timeout: .seconds(60))
        rig.report("close_connection", messages: 600)
        let alive = worker.process.isRunning
        let status = await rig.finish(worker)
        #expect(seen == 600, "worker log:\n\(worker.log.suffix(3000))")
        #expect(alive)
        #expect(status == 0)
        #expect(worker.log.contains("closed by the fault test"))
    }

    @Test func inputQueueDeletedUnderTheWorker() async throws {
        let rig = try await FaultRig(dariDelay: .milliseconds(5))
        try await rig.publish(100, prefix: "a")
        let worker = try rig.startWorker()
        #expect(await rig.observer.waitForDistinct(100, timeout: .seconds(60)) == 100)
        let admin = try await AMQPConnection.connect(to: FaultBroker.url)
        try await admin.deleteQueue(rig.queue)
        await admin.close()
        try await Task.sleep(for: .seconds(1))
        try await rig.publish(100, prefix: "b")  // the worker has declared it again
        let seen = await rig.observer.waitForDistinct(200, timeout: .seconds(60))
        rig.report("input queue deleted", messages: 200)
        let status = await rig.finish(worker)
        #expect(seen == 200, "worker log:\n\(worker.log.suffix(3000))")
        #expect(status == 0)
        #expect(worker.log.contains("cancelled our consumer"))
    }

    @Test func memoryAlarmPausesPublishingUntilLifted() async throws {
        // Slow enough that most messages are still to do when the alarm is set.
        let rig = try await FaultRig(dariDelay: .milliseconds(100))
        try await rig.publish(300)
        let worker = try rig.startWorker(concurrency: 16)
        _ = await rig.observer.waitForDistinct(30, timeout: .seconds(60))
        _ = try FaultBroker.ctl("set_vm_memory_high_watermark", "0.000001")
        try await Task.sleep(for: .seconds(3))
        let during = rig.observer.distinct
        let readyDuring = await rig.readyz()
        try await Task.sleep(for: .seconds(2))
        let stillDuring = rig.observer.distinct
        let alive = worker.process.isRunning
        _ = try FaultBroker.ctl("set_vm_memory_high_watermark", "0.4")
        let seen = await rig.observer.waitForDistinct(300, timeout: .seconds(60))
        rig.report("memory alarm", messages: 300)
        let status = await rig.finish(worker)
        #expect(alive)
        #expect(stillDuring == during, "no outcome gets through while the broker blocks publishers")
        #expect(readyDuring == 503)
        #expect(seen == 300, "worker log:\n\(worker.log.suffix(3000))")
        #expect(status == 0)
        #expect(worker.log.contains("broker blocked publishing"))
    }

    /// A broker that stops answering (SIGSTOP: a hung node or a silent network
    /// partition) must be noticed by the heartbeat check, not wait for TCP.
    @Test func frozenBrokerIsDetectedByHeartbeatTimeout() async throws {
        let rig = try await FaultRig(dariDelay: .milliseconds(5))
        try await rig.publish(20, prefix: "warm")
        let worker = try rig.startWorker(extra: ["DARI_BRIDGE_HEARTBEAT_S": "2"])
        #expect(await rig.observer.waitForDistinct(20, timeout: .seconds(30)) == 20)
        let beam = try #require(FaultBroker.beamPid(), "no beam.smp process for \(FaultBroker.node)")
        kill(beam, SIGSTOP)
        try await Task.sleep(for: .seconds(9))
        let noticed = worker.log.contains("broker connection lost")
        kill(beam, SIGCONT)
        try await rig.publish(50, prefix: "thawed")
        let seen = await rig.observer.waitForDistinct(70, timeout: .seconds(60))
        rig.report("broker frozen 9 s (heartbeat 2 s)", messages: 70)
        let status = await rig.finish(worker)
        #expect(noticed, "the worker did not notice a silent broker within 9 s:\n\(worker.log.suffix(2000))")
        #expect(seen == 70)
        #expect(status == 0)
    }

    /// SIGTERM while the broker withholds confirms (memory alarm): the drain
    /// deadline still holds, the worker exits 0, nothing unconfirmed is acked.
    @Test func sigtermDuringAMemoryAlarmExitsAtTheDrainDeadline() async throws {
        let rig = try await FaultRig(dariDelay: .milliseconds(300))
        try await rig.publish(100)
        let worker = try rig.startWorker(concurrency: 16, extra: ["DARI_BRIDGE_DRAIN_TIMEOUT_MS": "2000"])
        _ = await rig.observer.waitForDistinct(5, timeout: .seconds(60))
        _ = try FaultBroker.ctl("set_vm_memory_high_watermark", "0.000001")
        try await Task.sleep(for: .seconds(2))
        let before = rig.observer.distinct
        let start = ContinuousClock.now
        worker.signal(SIGTERM)
        let status = await worker.waitForExit(timeout: .seconds(30))
        let took = ContinuousClock.now - start
        _ = try FaultBroker.ctl("set_vm_memory_high_watermark", "0.4")
        // Whatever was not confirmed is back on the queue: a new worker finishes it.
        let second = try rig.startWorker(concurrency: 16)
        let seen = await rig.observer.waitForDistinct(100, timeout: .seconds(60))
        rig.report("SIGTERM during memory alarm (before: \(before))", messages: 100)
        let status2 = await rig.finish(second)
        #expect(status == 0, "\(worker.log.suffix(2000))")
        #expect(took < .seconds(15), "took \(took)")
        #expect(seen == 100)
        #expect(status2 == 0)
    }
}
}  // extension BrokerFaultSuites
