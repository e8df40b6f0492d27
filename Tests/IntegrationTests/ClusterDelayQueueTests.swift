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
        // First answer: 503 with Retry-After 20 s (over the 1 s in-memory wait: a
        // hand-off to <queue>.qdelay.20s); the second: the default 200. The node
        // is killed while the messages wait out their TTL, well before they expire.
        // (Once, with a 6 s TTL, the kill landed just as they expired and were
        // being dead-lettered: none came back within 2 minutes; see README.)
        for j in 0..<n { rig.dari.script(id: "d\(j)", [FakeDari.Reply(status: 503, headers: [("Retry-After", "20")], body: "{}"), .ok()]) }
        let started = ContinuousClock.now
        let worker = try rig.startWorker(concurrency: 16, extra: ["DARI_BRIDGE_MAX_IN_MEMORY_WAIT_MS": "1000"])
        try await rig.publish(n, prefix: "d")
        let delayQueue = "\(rig.queue).qdelay.20s"
        // Wait until every message sits in the delay queue.
        var held = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            held = (try? ClusterBroker.queueInfo(delayQueue))?.messages ?? 0
            if held >= n { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        // Both queues must have a member on every node before one is killed: a
        // quorum queue declared while the cluster was still forming can have
        // fewer, and losing one of two members loses its quorum.
        var info = try ClusterBroker.queueInfo(delayQueue)
        var input = try ClusterBroker.queueInfo(rig.queue)
        let membersDeadline = ContinuousClock.now + .seconds(30)
        while (info?.members.count ?? 0) < 3 || (input?.members.count ?? 0) < 3, ContinuousClock.now < membersDeadline {
            try await Task.sleep(for: .milliseconds(250))
            info = try ClusterBroker.queueInfo(delayQueue)
            input = try ClusterBroker.queueInfo(rig.queue)
        }
        print("MEMBERS delay=\(info?.members ?? []) input=\(input?.members ?? [])")
        let leader = try ClusterBroker.ctlAny(["list_queues", "name", "leader", "--formatter", "json"])
        let leaderNode = (try JSONSerialization.jsonObject(with: Data(leader.utf8)) as? [[String: Any]])?
            .first { $0["name"] as? String == delayQueue }?["leader"] as? String
        let killed = try #require(ClusterBroker.nodes.first { ClusterBroker.node($0) == leaderNode }, "no leader for \(delayQueue): \(leader)")
        let killedAfter = ContinuousClock.now - started
        try await ClusterBroker.offPool { try ClusterBroker.kill(killed) }
        let seen = await rig.observer.waitForDistinct(n, timeout: .seconds(120))
        let alive = worker.process.process.isRunning
        rig.report("SIGKILL of the node leading the quorum delay queue (50 deferred messages)", messages: n)
        let status = await ClusterRig.stop([worker]).first ?? nil
        try? await ClusterBroker.offPool { try ClusterBroker.startNode(killed) }
        await rig.finish([worker], deleting: [delayQueue])
        #expect(info?.type == "quorum")
        #expect(info?.members.count == 3 && input?.members.count == 3, "members: delay \(info?.members ?? []), input \(input?.members ?? [])")
        #expect(held >= n, "only \(held) of \(n) reached the delay queue")
        #expect(killedAfter < .seconds(15), "the kill came \(killedAfter) after the first deferral: not while the messages waited")
        #expect(seen == n, "deferred messages lost; worker log:\n\(worker.process.log.suffix(3000))")
        // Each message: the 503, then one POST after the delay (a redelivery after
        // the kill is answered from the worker's memory, not POSTed again).
        #expect(rig.dari.requestCount == 2 * n, "POSTs: \(rig.dari.requestCount)")
        #expect(alive)
        #expect(status == 0)
    }
}
}  // extension BrokerFaultSuites
