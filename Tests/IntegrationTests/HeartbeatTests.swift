import Foundation
import Synchronization
import Testing

/// An idle worker keeps its connection: the AMQP thread wakes at
/// heartbeat/4 and lets librabbitmq send heartbeats. With a 1 s heartbeat the
/// broker closes a silent connection after about 2 s; after 8 s of idling the
/// same connection must still be there.
@Suite(.serialized) struct HeartbeatTests {
    @Test func idleWorkerStaysConnectedThroughManyHeartbeats() async throws {
        let h = try await Harness { $0.heartbeatSeconds = 1 }
        h.startWorker()
        try await h.publish(id: "before-idle")
        await h.waitForOutcomes(1)
        try await Task.sleep(for: .seconds(8))
        try await h.publish(id: "after-idle")
        let got = await h.waitForOutcomes(2, timeout: .seconds(10))
        let reconnects = h.broker.reconnects.load(ordering: .relaxed)
        await h.stop()
        #expect(got.count == 2)
        #expect(h.outcome(for: "after-idle")?.body?.status == "succeeded")
        #expect(reconnects == 0, "the idle connection was lost and re-established")
    }
}
