import Foundation
import Synchronization
import Testing
@testable import RabbitMQ

/// The AMQP client against a real RabbitMQ (started by scripts/test.sh).
@Suite struct AMQPConnectionTests {
    @Test func publishConfirmedConsumeAndAck() async throws {
        let conn = try await TestBroker.connect()
        let queue = try await conn.declareQueue(TestBroker.uniqueName("t.roundtrip"), durable: false, autoDelete: false).name
        try await conn.qos(prefetchCount: 10)
        for i in 0..<20 {
            try await conn.publish(exchange: "", routingKey: queue, body: Array("m\(i)".utf8),
                                   properties: AMQPProperties(messageId: "id-\(i)", correlationId: "c-\(i)", replyTo: "r", persistent: true, headers: ["traceparent": "00-abc", "n": "1"]),
                                   mandatory: true)
        }
        let consumer = try await conn.consume(queue: queue)
        var seen: [String] = []
        for try await d in consumer.deliveries {
            seen.append(String(decoding: d.body, as: UTF8.self))
            #expect(d.properties.messageId == "id-\(seen.count - 1)")
            #expect(d.properties.correlationId == "c-\(seen.count - 1)")
            #expect(d.properties.replyTo == "r")
            #expect(d.properties.persistent)
            #expect(d.properties.headers["traceparent"] == "00-abc")
            #expect(d.channelIncarnation == conn.incarnation)
            try conn.ack(deliveryTag: d.deliveryTag)
            if seen.count == 20 { break }
        }
        #expect(seen == (0..<20).map { "m\($0)" })
        try await conn.cancel(consumerTag: consumer.tag)
        let left = try await conn.deleteQueue(queue)
        #expect(left == 0)
        await conn.close()
        #expect(!conn.isOpen)
    }

    @Test func manyConcurrentPublishesAreAllConfirmed() async throws {
        let conn = try await TestBroker.connect()
        let queue = try await conn.declareQueue(TestBroker.uniqueName("t.confirms"), durable: false, autoDelete: true).name
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<500 {
                group.addTask {
                    try await conn.publish(exchange: "", routingKey: queue, body: Array("x\(i)".utf8), properties: AMQPProperties(messageId: "\(i)"))
                }
            }
            try await group.waitForAll()
        }
        let declared = try await conn.declareQueue(queue, durable: false, autoDelete: true)
        #expect(declared.messageCount == 500)
        await conn.close()
    }

    @Test func unroutableMandatoryPublishThrowsReturned() async throws {
        let conn = try await TestBroker.connect()
        let exchange = TestBroker.uniqueName("t.noroute")
        try await conn.declareExchange(exchange, type: "topic", durable: false)
        await #expect(throws: AMQPError.self) {
            try await conn.publish(exchange: exchange, routingKey: "nobody", body: [1], properties: AMQPProperties(messageId: "lost"), mandatory: true)
        }
        do {
            try await conn.publish(exchange: exchange, routingKey: "nobody", body: [1], properties: AMQPProperties(messageId: "lost2"), mandatory: true)
        } catch let error as AMQPError {
            #expect(error.kind == .returned)
            #expect(error.replyCode == 312)
        }
        // Not mandatory: confirmed even though no queue got it.
        try await conn.publish(exchange: exchange, routingKey: "nobody", body: [1])
        #expect(conn.isOpen)
        await conn.close()
    }

    @Test func consumingAMissingQueueIsATypedChannelError() async throws {
        let conn = try await TestBroker.connect()
        do {
            _ = try await conn.consume(queue: TestBroker.uniqueName("t.missing"))
            Issue.record("consume on a missing queue succeeded")
        } catch let error as AMQPError {
            #expect(error.kind == .channelClosed)
            #expect(error.replyCode == 404)
            #expect(error.text.contains("NOT_FOUND"))
        }
        #expect(await conn.closed() != nil)
        #expect(!conn.isOpen)
    }

    @Test func publishToMissingExchangeFailsWithBrokerCode() async throws {
        let conn = try await TestBroker.connect()
        do {
            try await conn.publish(exchange: TestBroker.uniqueName("t.nope"), routingKey: "x", body: [1])
            Issue.record("publish to a missing exchange was confirmed")
        } catch let error as AMQPError {
            #expect(error.kind == .channelClosed)
            #expect(error.replyCode == 404)
        }
    }

    @Test func wrongPasswordIsAConnectError() async throws {
        var url = try TestBroker.url
        url.password = "definitely-wrong"
        do {
            _ = try await AMQPConnection.connect(to: url)
            Issue.record("login with a wrong password succeeded")
        } catch let error as AMQPError {
            #expect(error.kind == .connect || error.kind == .connectionClosed)
            #expect(error.replyCode == 403 || error.text.contains("ACCESS_REFUSED") || error.text.contains("password"))
        }
    }

    @Test func unreachableBrokerIsAConnectError() async throws {
        var url = try TestBroker.url
        url.port = 1  // nothing listens there
        await #expect(throws: AMQPError.self) { _ = try await AMQPConnection.connect(to: url) }
    }

    @Test func deletingTheQueueCancelsTheConsumerWithATypedError() async throws {
        let conn = try await TestBroker.connect()
        let admin = try await TestBroker.connect()
        let queue = try await conn.declareQueue(TestBroker.uniqueName("t.cancel"), durable: false).name
        let consumer = try await conn.consume(queue: queue)
        try await admin.deleteQueue(queue)
        do {
            for try await _ in consumer.deliveries {}
            Issue.record("stream ended without error")
        } catch let error as AMQPError {
            #expect(error.kind == .consumerCancelled)
        }
        #expect(conn.isOpen)  // the connection survives a cancelled consumer
        await conn.close()
        await admin.close()
    }

    @Test(.timeLimit(.minutes(1))) func aDestinationGetsEveryDeliveryInOrderThenOneCleanFinishAfterCancel() async throws {
        let conn = try await TestBroker.connect()
        let queue = try await conn.declareQueue(TestBroker.uniqueName("t.handler"), durable: false).name
        try await conn.qos(prefetchCount: 50)
        for i in 0..<30 { try await conn.publish(exchange: "", routingKey: queue, body: Array("h\(i)".utf8)) }
        let destination = RecordingDestination()
        let tag = try await conn.consume(queue: queue, into: destination)
        var events: [RecordingDestination.Event] = []
        for await event in destination.events {
            events.append(event)
            if case .delivery(_, let deliveryTag) = event { try? conn.ack(deliveryTag: deliveryTag) }
            if events.count == 30 { try await conn.cancel(consumerTag: tag) }
        }
        // The stream ends with the destination's finish: nothing after it, nothing twice.
        #expect(events.dropLast().map(\.body) == (0..<30).map { "h\($0)" })
        #expect(events.last == .finished(nil))
        // Unacked messages are not counted while the channel is open: close it, so any
        // delivery the destination failed to ack goes back to the queue and is counted.
        await conn.close()
        let check = try await TestBroker.connect()
        #expect(try await check.declareQueue(queue, durable: false).messageCount == 0)
        try await check.deleteQueue(queue)
        await check.close()
    }

    @Test(.timeLimit(.minutes(1))) func aDestinationIsFinishedWithTheTypedErrorWhenTheBrokerCancels() async throws {
        let conn = try await TestBroker.connect()
        let admin = try await TestBroker.connect()
        let queue = try await conn.declareQueue(TestBroker.uniqueName("t.hcancel"), durable: false).name
        try await conn.publish(exchange: "", routingKey: queue, body: [7])
        let destination = RecordingDestination()
        _ = try await conn.consume(queue: queue, into: destination)
        var events: [RecordingDestination.Event] = []
        for await event in destination.events {
            events.append(event)
            if case .delivery(_, let deliveryTag) = event {
                try? conn.ack(deliveryTag: deliveryTag)
                try await admin.deleteQueue(queue)
            }
        }
        #expect(events.count == 2)
        #expect(events.last == .finished(.consumerCancelled))
        await conn.close()
        await admin.close()
    }

    @Test(.timeLimit(.minutes(1))) func aDestinationIsFinishedWithTheErrorWhenTheConnectionFails() async throws {
        let conn = try await TestBroker.connect()
        let queue = TestBroker.uniqueName("t.hfail")
        try await conn.declareQueue(queue, durable: false)
        let destination = RecordingDestination()
        _ = try await conn.consume(queue: queue, into: destination)
        // A passive declare of a missing queue: the broker closes the channel (404),
        // which ends this connection.
        await #expect(throws: AMQPError.self) { try await conn.checkQueue(TestBroker.uniqueName("t.none")) }
        var events: [RecordingDestination.Event] = []
        for await event in destination.events { events.append(event) }
        #expect(events == [.finished(.channelClosed)])
        await conn.close()
        let check = try await TestBroker.connect()
        try await check.deleteQueue(queue)
        await check.close()
    }

    @Test(.timeLimit(.minutes(1))) func queueCountsAnswerOnTheSecondChannelWhileTheConsumerHoldsDeliveries() async throws {
        let conn = try await TestBroker.connect()
        let queue = try await conn.declareQueue(TestBroker.uniqueName("t.counts"), durable: false).name
        try await conn.qos(prefetchCount: 2)
        for i in 0..<5 { try await conn.publish(exchange: "", routingKey: queue, body: Array("c\(i)".utf8)) }
        let destination = RecordingDestination()
        _ = try await conn.consume(queue: queue, into: destination)
        var delivered = 0
        for await event in destination.events {
            if case .delivery = event { delivered += 1 }
            if delivered == 2 { break }
        }
        // Two held unacked (the prefetch), three ready: the count is the ready ones.
        var counts = try await conn.queueCounts(queue, timeout: .seconds(5))
        for _ in 0..<50 where counts.messageCount != 3 {
            try await Task.sleep(for: .milliseconds(20))
            counts = try await conn.queueCounts(queue, timeout: .seconds(5))
        }
        #expect(counts.messageCount == 3)
        #expect(counts.consumerCount == 1)
        #expect(conn.isOpen)
        try await conn.deleteQueue(queue)
        await conn.close()
    }

    @Test func unackedMessagesReturnToTheQueueWhenTheConnectionCloses() async throws {
        let conn = try await TestBroker.connect()
        let queue = try await conn.declareQueue(TestBroker.uniqueName("t.requeue"), durable: false).name
        for i in 0..<5 { try await conn.publish(exchange: "", routingKey: queue, body: [UInt8(i)]) }
        let consumer = try await conn.consume(queue: queue)
        var got = 0
        for try await d in consumer.deliveries {
            got += 1
            if got <= 2 { try conn.ack(deliveryTag: d.deliveryTag) }
            if got == 5 { break }
        }
        await conn.close()
        let check = try await TestBroker.connect()
        let declared = try await check.declareQueue(queue, durable: false)
        #expect(declared.messageCount == 3)
        // An ack for a closed connection is refused, never sent elsewhere.
        #expect(throws: AMQPError.self) { try conn.ack(deliveryTag: 3) }
        try await check.deleteQueue(queue)
        await check.close()
    }

    @Test func brokerNackOfAPublishIsATypedError() async throws {
        // A full queue with overflow "reject-publish" makes the broker nack.
        let conn = try await TestBroker.connect()
        let queue = try await conn.declareQueue(TestBroker.uniqueName("t.full"), durable: false, autoDelete: false,
                                                arguments: ["x-max-length": .int(1), "x-overflow": .string("reject-publish")]).name
        try await conn.publish(exchange: "", routingKey: queue, body: [1])
        do {
            try await conn.publish(exchange: "", routingKey: queue, body: [2])
            Issue.record("publish to a full reject-publish queue was confirmed")
        } catch let error as AMQPError {
            #expect(error.kind == .nacked)
        }
        #expect(conn.isOpen)
        try await conn.deleteQueue(queue)
        await conn.close()
    }

    @Test func nackAndRejectRequeueOrDrop() async throws {
        let conn = try await TestBroker.connect()
        let queue = try await conn.declareQueue(TestBroker.uniqueName("t.nack"), durable: false).name
        for i in 0..<3 { try await conn.publish(exchange: "", routingKey: queue, body: [UInt8(i)]) }
        let consumer = try await conn.consume(queue: queue)
        var firstRound: [UInt8] = []
        var redelivered: [UInt8] = []
        for try await d in consumer.deliveries {
            if !d.redelivered {
                firstRound.append(d.body[0])
                if d.body[0] == 0 { try conn.reject(deliveryTag: d.deliveryTag, requeue: false) }  // dropped
                if d.body[0] == 2 { try conn.nack(deliveryTag: d.deliveryTag, multiple: true, requeue: true) }  // 1 and 2 back
            } else {
                redelivered.append(d.body[0])
                try conn.ack(deliveryTag: d.deliveryTag)
                if redelivered.count == 2 { break }
            }
        }
        #expect(firstRound == [0, 1, 2])
        #expect(redelivered.sorted() == [1, 2])
        try await conn.cancel(consumerTag: consumer.tag)
        #expect(try await conn.deleteQueue(queue) == 0)
        await conn.close()
    }
}

/// A consumer destination that hands on what it is given, in order, as a stream
/// that ends with the destination's finish.
struct RecordingDestination: AMQPConsumerDestination {
    enum Event: Sendable, Equatable {
        case delivery(body: String, tag: UInt64)
        case finished(AMQPError.Kind?)

        var body: String? {
            if case .delivery(let body, _) = self { return body }
            return nil
        }
    }

    let events: AsyncStream<Event>
    let continuation: AsyncStream<Event>.Continuation

    init() {
        (events, continuation) = AsyncStream<Event>.makeStream()
    }

    func deliver(_ delivery: AMQPDelivery) {
        continuation.yield(.delivery(body: String(decoding: delivery.body, as: UTF8.self), tag: delivery.deliveryTag))
    }

    func finish(_ error: AMQPError?) {
        continuation.yield(.finished(error?.kind))
        continuation.finish()
    }
}
