import DariBridge
import FakeDari
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import RabbitMQ
import TestSupport

/// One cluster scenario: the three-node cluster (started if needed), a
/// pre-declared input queue, FakeDari, worker processes given every node
/// (AMQP_URL as a comma list), a cluster-wide observer.
final class ClusterRig: Sendable {
    let dari: FakeDari
    let queue: String
    let exchange: String
    let observer: ClusterObserver

    /// `queueArguments` nil: the queue is not declared here (the worker declares it).
    init(dariDelay: Duration, queueArguments: [String: AMQPArgument]? = ["x-queue-type": .string("quorum")], queuePrefix: String = "cluster.requests") async throws {
        try await ClusterBroker.offPool { try ClusterBroker.start() }
        dari = try await FakeDari.start(defaultReply: FakeDari.Reply(status: 200, body: #"{"ok":true}"#, delay: dariDelay), eventLoopThreads: 2)
        let suffix = UUID().uuidString.prefix(8)
        queue = "\(queuePrefix).\(suffix)"
        exchange = "cluster.results.\(suffix)"
        observer = ClusterObserver(exchange: exchange)
        try await observer.prepare()
        if let queueArguments {
            let c = try await ClusterBroker.connectAny()
            _ = try await c.declareQueue(queue, durable: true, arguments: queueArguments)
            await c.close()
        }
        observer.start()
    }

    func startWorker(concurrency: Int = 16, queue: String? = nil, extra: [String: String] = [:]) throws -> ClusterWorker {
        let port = unusedPort()
        var env = [
            "AMQP_URL": ClusterBroker.urlList,
            "DARI_BRIDGE_QUEUE": queue ?? self.queue,
            "DARI_BRIDGE_RESULTS_EXCHANGE": exchange,
            "DARI_BRIDGE_ALLOWED_HOSTS": "127.0.0.1:\(dari.port)",
            "DARI_BRIDGE_ALLOW_INSECURE_HTTP": "true",
            "DARI_BRIDGE_CONCURRENCY": "\(concurrency)",
            "DARI_BRIDGE_HTTP_PORT": "\(port)",
            "DARI_BRIDGE_HTTP_HOST": "127.0.0.1",
            "DARI_BRIDGE_RECONNECT_INITIAL_MS": "200",
            "DARI_BRIDGE_RECONNECT_MAX_MS": "2000",
            "DARI_BRIDGE_HEARTBEAT_S": "5",
            "DARI_BRIDGE_LOG_LEVEL": ProcessInfo.processInfo.environment["DARI_TEST_CLUSTER_WORKER_LOG_LEVEL"] ?? "info",
        ]
        for (k, v) in extra { env[k] = v }
        return ClusterWorker(process: try WorkerProcess(environment: env), metricsPort: port)
    }

    func body(_ id: String, _ j: Int) -> [UInt8] {
        ResumeRequest.messageBody(resumeURL: "http://127.0.0.1:\(dari.port)/public/send-user-signal/\(id)",
                                  variablesJSON: Array(#"{"n":\#(j)}"#.utf8))
    }

    /// Publishes persistent, confirmed messages <prefix>0..n-1 to `queue`
    /// (default: the rig's), through any node; a batch whose publish fails
    /// (a node stopping) is published again through another node.
    func publish(_ n: Int, prefix: String = "m", to queue: String? = nil) async throws {
        let target = queue ?? self.queue
        var conn = try await ClusterBroker.connectAny()
        var i = 0
        var failures = 0
        while i < n {
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for j in i..<min(n, i + 200) {
                        let body = self.body("\(prefix)\(j)", j)
                        let c = conn
                        group.addTask {
                            try await c.publish(exchange: "", routingKey: target, body: body,
                                                properties: AMQPProperties(messageId: "\(prefix)\(j)", persistent: true), mandatory: true)
                        }
                    }
                    try await group.waitForAll()
                }
                i = min(n, i + 200)
            } catch {
                failures += 1
                if failures > 100 { throw HarnessError("publishing to the cluster kept failing: \(error)") }
                await conn.close()
                try await Task.sleep(for: .milliseconds(300))
                conn = try await ClusterBroker.connectAny()
            }
        }
        await conn.close()
    }

    /// The input queue's message count (ready + unacked) once it is 0, or the
    /// last count seen at the timeout; nil when the queue is missing. Polled
    /// while the workers still run: messages returned to the queue by a dead
    /// node's channel can still be on their way back through a worker.
    func waitForEmptyQueue(timeout: Duration) async throws -> Int? {
        let deadline = ContinuousClock.now + timeout
        var left = try ClusterBroker.queueInfo(queue)?.messages
        while left != 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(500))
            left = try ClusterBroker.queueInfo(queue)?.messages
        }
        return left
    }

    func report(_ name: String, messages: Int) {
        print("FAULT \(name): messages=\(messages) outcomes=\(observer.distinct) duplicates=\(observer.duplicates) dari_requests=\(dari.requestCount) double_posts=\(dari.requestCount - observer.distinct)")
    }

    /// SIGTERM to every worker; their exit statuses.
    static func stop(_ workers: [ClusterWorker]) async -> [Int32?] {
        var statuses: [Int32?] = []
        for w in workers { w.process.signal(SIGTERM) }
        for w in workers { statuses.append(await w.process.waitForExit(timeout: .seconds(30))) }
        return statuses
    }

    /// Stops what is still running (workers, observer), deletes the rig's queues.
    func finish(_ workers: [ClusterWorker], deleting extraQueues: [String] = []) async {
        _ = await Self.stop(workers.filter { $0.process.process.isRunning })
        await observer.stop()
        if let c = try? await ClusterBroker.connectAny() {
            for q in [queue, observer.queue] + extraQueues { _ = try? await c.deleteQueue(q) }
            await c.close()
        }
        try? await dari.shutdown()
    }
}

/// A worker process of a cluster test and its /metrics port.
struct ClusterWorker: Sendable {
    let process: WorkerProcess
    let metricsPort: Int

    /// GET /readyz's status, nil when nothing answers.
    func readyz() async -> Int? {
        guard let url = URL(string: "http://127.0.0.1:\(metricsPort)/readyz") else { return nil }
        guard let (_, response) = try? await URLSession.shared.data(from: url) else { return nil }
        return (response as? HTTPURLResponse)?.statusCode
    }

    func waitReady(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await readyz() == 200 { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// The node label of the `dari_bridge_broker_connected` series at 1 in /metrics (host:port);
    /// every configured node has a series, 0 for the ones not connected to.
    func connectedNode() async -> String? {
        guard let url = URL(string: "http://127.0.0.1:\(metricsPort)/metrics"),
              let (data, _) = try? await URLSession.shared.data(from: url) else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix("dari_bridge_broker_connected{node=\"")
            && line.split(separator: " ").last.flatMap({ Double($0) }) == 1 {
            return line.split(separator: "\"").dropFirst().first.map(String.init)
        }
        return nil
    }

    /// The sum of dari_bridge_messages_total over every outcome: the input
    /// messages this process finished (confirmed outcome, acked).
    func messagesTotal() async -> Int? {
        guard let url = URL(string: "http://127.0.0.1:\(metricsPort)/metrics"),
              let (data, _) = try? await URLSession.shared.data(from: url) else { return nil }
        var sum = 0
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix("dari_bridge_messages_total{") {
            if let value = line.split(separator: " ").last.flatMap({ Double($0) }) { sum += Int(value) }
        }
        return sum
    }
}
