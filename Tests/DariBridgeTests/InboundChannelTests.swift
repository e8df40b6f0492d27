import Foundation
import Testing
@testable import DariBridge

private func message(_ n: UInt64) -> InboundMessage {
    InboundMessage(body: [], token: DeliveryToken(tag: n, incarnation: 1))
}

@Suite("InboundChannel")
struct InboundChannelTests {
    @Test func handsOutInOrderThenEndsAfterFinish() async {
        let channel = InboundChannel()
        for n: UInt64 in 1...5 { #expect(channel.yield(message(n))) }
        channel.finish()
        #expect(!channel.yield(message(6)), "nothing is taken once finished")
        var tags: [UInt64] = []
        for await m in channel { tags.append(m.token.tag) }
        #expect(tags == [1, 2, 3, 4, 5])
        #expect(channel.count == 0)
    }

    @Test func aWaitingConsumerIsResumedByTheProducer() async {
        let channel = InboundChannel()
        let consumer = Task { () -> [UInt64] in
            var tags: [UInt64] = []
            for await m in channel { tags.append(m.token.tag) }
            return tags
        }
        // The consumer is (most likely) waiting by now; either way it gets both.
        try? await Task.sleep(for: .milliseconds(20))
        channel.yield(message(1))
        try? await Task.sleep(for: .milliseconds(20))
        channel.yield(message(2))
        channel.finish()
        #expect(await consumer.value == [1, 2])
    }

    /// A task that counts what it takes from `channel` until the end.
    private func counter(_ channel: InboundChannel) -> Task<Int, Never> {
        Task {
            var n = 0
            for await _ in channel { n += 1 }
            return n
        }
    }

    @Test func finishingWakesAWaitingConsumer() async {
        let channel = InboundChannel()
        let consumer = counter(channel)
        try? await Task.sleep(for: .milliseconds(20))
        channel.finish()
        #expect(await consumer.value == 0)
    }

    @Test func cancellingTheWaitingConsumerEndsItAndFinishesTheChannel() async {
        let channel = InboundChannel()
        let consumer = counter(channel)
        try? await Task.sleep(for: .milliseconds(20))
        consumer.cancel()
        #expect(await consumer.value == 0)
        #expect(!channel.yield(message(1)), "a cancelled consumer's channel takes nothing (as AsyncStream)")
    }

    @Test func aConsumerCancelledBeforeItWaitsEndsToo() async {
        let channel = InboundChannel()
        let consumer = Task { () -> Int in
            while !Task.isCancelled { await Task.yield() }
            var n = 0
            for await _ in channel { n += 1 }
            return n
        }
        consumer.cancel()
        #expect(await consumer.value == 0)
    }

    /// Four producer threads against one consumer task: every message arrives
    /// once, each producer's in its order, through many waits and wake-ups.
    @Test(.timeLimit(.minutes(1))) func manyProducersOneConsumerLoseNothing() async {
        let channel = InboundChannel()
        let producers = 4, each: UInt64 = 25_000
        let consumer = Task { () -> [[UInt64]] in
            var seen = Array(repeating: [UInt64](), count: producers)
            for await m in channel { seen[Int(m.token.incarnation)].append(m.token.tag) }
            return seen
        }
        let done = DispatchGroup()
        for p in 0..<producers {
            done.enter()
            Thread.detachNewThread {
                for n in 1...each {
                    channel.yield(InboundMessage(body: [], token: DeliveryToken(tag: n, incarnation: UInt64(p))))
                    if n % 1000 == 0 { usleep(100) }  // let the consumer catch up and wait
                }
                done.leave()
            }
        }
        await withCheckedContinuation { c in done.notify(queue: .global()) { c.resume() } }
        channel.finish()
        let seen = await consumer.value
        for p in 0..<producers { #expect(seen[p] == Array(1...each), "producer \(p)") }
    }
}
