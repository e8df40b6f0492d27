import Foundation
import RabbitMQ
import Testing

extension BrokerFaultSuites {
/// The worker (a separate process, AMQP_URL = every node of the cluster)
/// against the three-node cluster of scripts/cluster.sh, which these tests
/// start and break themselves. Each prints a FAULT line for the README.
@Suite(.serialized) struct ClusterTests {
    /// Node numbers the workers' connections are on, polled until `count` show
    /// up (a connection appears in list_connections a moment after it opens).
    func workerNodes(count: Int, timeout: Duration = .seconds(20)) async throws -> [Int] {
        let deadline = ContinuousClock.now + timeout
        var nodes: [Int] = []
        while ContinuousClock.now < deadline {
            nodes = try ClusterBroker.workerConnectionNodes()
            if nodes.count == count { return nodes }
            try await Task.sleep(for: .milliseconds(250))
        }
        return nodes
    }

    @Test func quorumQueueDeclaredOnNodeOneHasMembersOnAllThree() async throws {
        try await ClusterBroker.offPool { try ClusterBroker.start() }
        let queue = "cluster.members.\(UUID().uuidString.prefix(8))"
        let c = try await AMQPConnection.connect(to: ClusterBroker.url(1), options: ClusterBroker.options)
        _ = try await c.declareQueue(queue, durable: true, arguments: ["x-queue-type": .string("quorum")])
        let info = try ClusterBroker.queueInfo(queue)
        _ = try? await c.deleteQueue(queue)
        await c.close()
        #expect(info?.type == "quorum")
        #expect(Set(info?.members ?? []) == Set(ClusterBroker.nodes.map(ClusterBroker.node)))
    }

    @Test func sigkillOfTheWorkersNodeWhileTwoThousandMessagesFlow() async throws {
        let rig = try await ClusterRig(dariDelay: .milliseconds(40))
        try await rig.publish(2000)
        let worker = try rig.startWorker(concurrency: 16)
        _ = await rig.observer.waitForDistinct(300, timeout: .seconds(90))
        let before = try await workerNodes(count: 1)
        let killed = try #require(before.first, "no worker connection in list_connections")
        try await ClusterBroker.offPool { try ClusterBroker.kill(killed) }
        let seen = await rig.observer.waitForDistinct(2000, timeout: .seconds(180))
        let left = try await rig.waitForEmptyQueue(timeout: .seconds(60))
        let after = try await workerNodes(count: 1)
        let shownNode = await worker.connectedNode()
        let alive = worker.process.process.isRunning
        rig.report("SIGKILL of the cluster node the worker is connected to", messages: 2000)
        let status = await ClusterRig.stop([worker]).first ?? nil
        await rig.finish([worker])
        #expect(seen == 2000, "lost messages; worker log:\n\(worker.process.log.suffix(3000))")
        #expect(after.count == 1 && after.first != killed, "worker connections after the kill: \(after) (killed node \(killed))")
        #expect(alive, "the worker exited")
        #expect(status == 0)
        #expect(left == 0, "messages left in the queue: \(left.map(String.init) ?? "queue missing")")
        #expect(worker.process.log.contains("reconnected to the broker"))
        // /metrics names the node it is connected to now, and the log never a password.
        #expect(shownNode == after.first.map { "127.0.0.1:\(ClusterBroker.port($0))" }, "metrics node \(shownNode ?? "none"), connections on \(after)")
        #expect(!worker.process.log.contains("guest:guest"))
    }

    @Test func rollingRestartOfAllThreeNodesUnderLoad() async throws {
        let rig = try await ClusterRig(dariDelay: .milliseconds(50))
        try await rig.publish(1500)
        let worker = try rig.startWorker(concurrency: 16)
        _ = await rig.observer.waitForDistinct(200, timeout: .seconds(90))
        // More messages arrive while the nodes restart one after another.
        let publisher = Task { try await rig.publish(1500, prefix: "during") }
        for n in ClusterBroker.nodes { try await ClusterBroker.offPool { try ClusterBroker.restartNode(n) } }
        try await publisher.value
        let seen = await rig.observer.waitForDistinct(3000, timeout: .seconds(180))
        let left = try await rig.waitForEmptyQueue(timeout: .seconds(60))
        let alive = worker.process.process.isRunning
        rig.report("rolling restart of the three nodes under load", messages: 3000)
        let status = await ClusterRig.stop([worker]).first ?? nil
        await rig.finish([worker])
        #expect(seen == 3000, "lost messages; worker log:\n\(worker.process.log.suffix(3000))")
        #expect(alive, "the worker exited")
        #expect(status == 0)
        #expect(left == 0, "messages left in the queue: \(left.map(String.init) ?? "queue missing")")
    }

    /// Queues an operator declared with arguments of their own (a delivery
    /// limit and a dead-letter exchange; a length limit) are consumed as they
    /// are: a declare with other arguments would fail with 406 PRECONDITION_FAILED.
    @Test func preDeclaredQueuesWithTheirOwnArgumentsAreConsumedAsTheyAre() async throws {
        let suffix = UUID().uuidString.prefix(8)
        let dlx = "cluster.dlx.\(suffix)"
        let setup = try await ClusterBroker.connectAny()
        try await setup.declareExchange(dlx, type: "fanout", durable: true)
        await setup.close()
        let rig = try await ClusterRig(dariDelay: .milliseconds(5), queueArguments: [
            "x-queue-type": .string("quorum"),
            "x-delivery-limit": .int(20),
            "x-dead-letter-exchange": .string(dlx),
        ])
        let classic = "\(rig.queue).classic"
        let c = try await ClusterBroker.connectAny()
        _ = try await c.declareQueue(classic, durable: true, arguments: ["x-max-length": .int(10_000), "x-queue-type": .string("classic")])
        await c.close()
        try await rig.publish(150, prefix: "q")
        try await rig.publish(150, prefix: "c", to: classic)
        let onQuorum = try rig.startWorker(concurrency: 8)
        let onClassic = try rig.startWorker(concurrency: 8, queue: classic)
        let seen = await rig.observer.waitForDistinct(300, timeout: .seconds(90))
        let quorumInfo = try ClusterBroker.queueInfo(rig.queue)
        let classicInfo = try ClusterBroker.queueInfo(classic)
        rig.report("pre-declared quorum queue (delivery limit, DLX) and classic queue (max length)", messages: 300)
        let statuses = await ClusterRig.stop([onQuorum, onClassic])
        await rig.finish([onQuorum, onClassic], deleting: [classic])
        #expect(seen == 300, "quorum worker log:\n\(onQuorum.process.log.suffix(2000))\nclassic worker log:\n\(onClassic.process.log.suffix(2000))")
        #expect(quorumInfo?.type == "quorum")
        #expect(classicInfo?.type == "classic")
        #expect(statuses == [0, 0])
        for w in [onQuorum, onClassic] {
            #expect(!w.process.log.contains("PRECONDITION_FAILED"), "\(w.process.log.suffix(2000))")
        }
    }

    @Test func threeReplicasOnOneQuorumQueueShareTheWork() async throws {
        let rig = try await ClusterRig(dariDelay: .milliseconds(20))
        let workers = try (0..<3).map { _ in try rig.startWorker(concurrency: 8) }
        for w in workers {
            #expect(await w.waitReady(timeout: .seconds(60)), "a replica never got ready:\n\(w.process.log.suffix(2000))")
        }
        try await rig.publish(2000)
        let seen = await rig.observer.waitForDistinct(2000, timeout: .seconds(120))
        var perReplica: [Int] = []
        for w in workers { perReplica.append(await w.messagesTotal() ?? -1) }
        let nodes = try ClusterBroker.workerConnectionNodes()
        rig.report("three replicas on one quorum queue (per replica \(perReplica.map(String.init).joined(separator: "/")), on nodes \(nodes.sorted()))", messages: 2000)
        let statuses = await ClusterRig.stop(workers)
        await rig.finish(workers)
        #expect(seen == 2000)
        #expect(rig.observer.duplicates == 0, "every message exactly one outcome")
        #expect(rig.dari.requestCount == 2000, "every message exactly one POST")
        #expect(perReplica.allSatisfy { $0 > 0 }, "every replica takes a share: \(perReplica)")
        #expect(perReplica.reduce(0, +) == 2000, "per replica: \(perReplica)")
        #expect(statuses == [0, 0, 0])
    }
}
}  // extension BrokerFaultSuites
