import Foundation
import Testing
@testable import RabbitMQ

/// The coalescer alone: which frames a set of asked-for acks becomes.
@Suite struct AckCoalescerTests {
    func frames(delivered: [UInt64], settled: [(UInt64, Bool)] = [], acks: [UInt64]) -> ([String], [UInt64]) {
        var c = AckCoalescer()
        for t in delivered { c.delivered(t) }
        for (t, m) in settled { c.settled(t, multiple: m) }
        for t in acks { c.requestAck(t) }
        var out: [String] = []
        c.drain { tag, multiple in out.append(multiple ? "\(tag)+" : "\(tag)") }
        #expect(!c.hasRequested)
        return (out, c.unsettled)
    }

    @Test func aRunFromTheOldestUnsettledIsOneMultipleAck() {
        let (f, left) = frames(delivered: Array(1...6), acks: [3, 1, 2])
        #expect(f == ["3+"])
        #expect(left == [4, 5, 6])
    }

    @Test func aHoleStopsTheRunAndTheRestGoOutOneByOne() {
        let (f, left) = frames(delivered: Array(1...8), acks: [1, 2, 3, 5, 6, 8])
        #expect(f == ["3+", "5", "6", "8"])
        #expect(left == [4, 7])
    }

    @Test func nothingIsMultipleWhileTheOldestIsStillInWork() {
        let (f, left) = frames(delivered: Array(1...4), acks: [2, 3, 4])
        #expect(f == ["2", "3", "4"])
        #expect(left == [1])
    }

    @Test func aSingleAckAtTheFrontStaysSingle() {
        let (f, left) = frames(delivered: [1, 2], acks: [1])
        #expect(f == ["1"])
        #expect(left == [2])
    }

    @Test func rejectedTagsBelowDoNotBlockTheRun() {
        // 1 rejected, 2 nacked with multiple earlier: the run starts at 3.
        let (f, left) = frames(delivered: Array(1...5), settled: [(1, false), (2, true)], acks: [3, 4])
        #expect(f == ["4+"])
        #expect(left == [5])
    }

    @Test func aTagAskedTwiceInOnePassIsAckedOnce() {
        let (f, _) = frames(delivered: Array(1...3), acks: [1, 1, 3, 3])
        #expect(f == ["1", "3"])
    }

    @Test func anUnknownTagIsSentAsAskedAndTheBrokerJudgesIt() {
        let (f, left) = frames(delivered: [5, 6], acks: [2, 5])
        #expect(f == ["2", "5"])
        #expect(left == [6])
    }

    @Test func outOfOrderDeliveriesStaySorted() {
        let (f, left) = frames(delivered: [2, 1, 3, 3], acks: [1, 2])
        #expect(f == ["2+"])
        #expect(left == [3])
    }
}

/// Coalesced acks against a real RabbitMQ: a multiple ack never takes a
/// delivery that was not asked for.
@Suite struct AckCoalescingBrokerTests {
    /// Publishes `count` messages (bodies 1...count), consumes all of them
    /// unacked, then runs `settle` on the connection thread in one pass (so the
    /// acks coalesce), closes the connection and returns the bodies the broker
    /// still holds (requeued: the unacked ones) and the ack frames written.
    func run(count: Int, settle: @escaping @Sendable (AMQPIO, [UInt64]) -> Void) async throws -> (left: [UInt8], ackFrames: Int) {
        let conn = try await TestBroker.connect()
        let queue = try await conn.declareQueue(TestBroker.uniqueName("t.coalesce"), durable: false).name
        try await conn.qos(prefetchCount: UInt16(count))
        for i in 1...count { try await conn.publish(exchange: "", routingKey: queue, body: [UInt8(i)]) }
        let consumer = try await conn.consume(queue: queue)
        var tags: [UInt64] = []
        for try await d in consumer.deliveries {
            #expect(d.body == [UInt8(tags.count + 1)])
            tags.append(d.deliveryTag)
            if tags.count == count { break }
        }
        let delivered = tags
        let frames = try await conn.perform { io -> Int in
            let before = io.ackFramesSent
            settle(io, delivered)
            io.flushAcks()
            return io.ackFramesSent - before
        }
        // A round trip after the acks: the broker has processed them.
        try await conn.declareQueue(queue, durable: false)
        await conn.close()
        let check = try await TestBroker.connect()
        var left: [UInt8] = []
        let remaining = try await check.declareQueue(queue, durable: false).messageCount
        if remaining > 0 {
            let back = try await check.consume(queue: queue)
            for try await d in back.deliveries {
                left.append(d.body[0])
                try check.ack(deliveryTag: d.deliveryTag)
                if left.count == Int(remaining) { break }
            }
        }
        try await check.deleteQueue(queue)
        await check.close()
        return (left.sorted(), frames)
    }

    @Test(.timeLimit(.minutes(1))) func everyAckInOnePassIsOneFrameAndNothingIsLeft() async throws {
        let r = try await run(count: 10) { io, tags in for t in tags.reversed() { io.ack(t, multiple: false) } }
        #expect(r.ackFrames == 1)
        #expect(r.left == [])
    }

    @Test(.timeLimit(.minutes(1))) func unfinishedDeliveriesInsideTheRangeStayUnacked() async throws {
        // 4, 8 and 10 are still "in work": the multiple ack may only cover 1...3.
        let r = try await run(count: 10) { io, tags in
            for i in [0, 1, 2, 4, 5, 6, 8] { io.ack(tags[i], multiple: false) }
        }
        #expect(r.ackFrames == 5)  // 3 (multiple), 5, 6, 7, 9
        #expect(r.left == [4, 8, 10])
    }

    @Test(.timeLimit(.minutes(1))) func aRejectBelowTheRunIsNotUndone() async throws {
        // 1 rejected without requeue (dropped), 2...5 acked as one frame, 6 left.
        let r = try await run(count: 6) { io, tags in
            io.reject(tags[0], requeue: false)
            for t in tags[1...4] { io.ack(t, multiple: false) }
        }
        #expect(r.ackFrames == 1)
        #expect(r.left == [6])
    }

    @Test(.timeLimit(.minutes(1))) func aMultipleNackAfterAskedAcksDoesNotRequeueThem() async throws {
        // 1 and 2 asked to be acked, then nack(4, multiple, requeue): only 3 and 4 go back.
        let r = try await run(count: 5) { io, tags in
            io.ack(tags[0], multiple: false)
            io.ack(tags[1], multiple: false)
            io.nack(tags[3], multiple: true, requeue: true)
        }
        #expect(r.ackFrames == 1)
        #expect(r.left == [3, 4, 5])
    }
}
