import FakeDari
import Foundation
import RabbitMQ
import Testing

extension BrokerFaultSuites {
/// A deferred message survives the loss of a node: the worker's delay queues
/// are quorum queues (message TTL, at-least-once dead-lettering back to the
/// input queue), so killing the node that leads the delay queue (the worker's
/// own node: a quorum queue's leader is where it was declared) loses nothing.
@Suite(.serialized) struct ClusterDelayQueueTests {
    @Test func deferredMessagesSurviveTheLossOfTheDelayQueuesLeader() async throws {
        let rig = try await ClusterRig(dariDelay: .milliseconds(5))
        let n = 50
        // First answer: 503 with Retry-After 6 s (over the 1 s in-memory wait: a
        // hand-off to <queue>.qdelay.6s); the second: the default 200.
        for j in 0..<n { rig.dari.script(id: "d\(j)", [FakeDari.Reply(status: 503, headers: [("Retry-After", "6")], body: "{}")]) }
        let worker = try rig.startWorker(concurrency: 16, extra: ["DARI_BRIDGE_MAX_IN_MEMORY_WAIT_MS": "1000"])
        try await rig.publish(n, prefix: "d")
        let delayQueue = "\(rig.queue).qdelay.6s"
        // Wait until every message sits in the delay queue.
        var held = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            held = (try? ClusterBroker.queueInfo(delayQueue))?.messages ?? 0
            if held >= n { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let info = try ClusterBroker.queueInfo(delayQueue)
        let leader = try ClusterBroker.ctlAny(["list_queues", "name", "leader", "--formatter", "json"])
        let leaderNode = (try JSONSerialization.jsonObject(with: Data(leader.utf8)) as? [[String: Any]])?
            .first { $0["name"] as? String == delayQueue }?["leader"] as? String
        let killed = try #require(ClusterBroker.nodes.first { ClusterBroker.node($0) == leaderNode }, "no leader for \(delayQueue): \(leader)")
        try await ClusterBroker.offPool { try ClusterBroker.kill(killed) }
        let seen = await rig.observer.waitForDistinct(n, timeout: .seconds(120))
        let alive = worker.process.process.isRunning
        rig.report("SIGKILL of the node leading the quorum delay queue (50 deferred messages)", messages: n)
        let status = await ClusterRig.stop([worker]).first ?? nil
        try? await ClusterBroker.offPool { try ClusterBroker.startNode(killed) }
        await rig.finish([worker], deleting: [delayQueue])
        #expect(info?.type == "quorum")
        #expect(held >= n, "only \(held) of \(n) reached the delay queue")
        #expect(seen == n, "deferred messages lost; worker log:\n\(worker.process.log.suffix(3000))")
        #expect(rig.dari.requestCount >= 2 * n, "each message: the 503, then the POST after the delay")
        #expect(alive)
        #expect(status == 0)
    }
}
}  // extension BrokerFaultSuites
