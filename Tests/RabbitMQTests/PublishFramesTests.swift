import CRabbitMQ
import Foundation
import Testing
@testable import RabbitMQ

/// Publishes on a plain connection are encoded by us into one buffer
/// (`dari_encode_publish`, AMQPIO+Publish.swift): what the broker delivers must
/// be exactly what was published, at every body size around the frame size.
@Suite struct PublishFramesTests {
    @Test(.timeLimit(.minutes(2))) func bodiesAroundTheFrameSizeArriveExactly() async throws {
        let conn = try await TestBroker.connect()
        let frameMax = try await conn.perform { io in Int(amqp_get_frame_max(io.state)) }
        #expect(try await conn.perform { io in io.plainSocket != nil }, "a plain connection takes the one-buffer path")
        let chunk = frameMax - 8
        let sizes = [0, 1, chunk - 1, chunk, chunk + 1, 2 * chunk, 2 * chunk + 5, 300_000]
        let queue = try await conn.declareQueue(TestBroker.uniqueName("t.frames"), durable: false).name
        var published: [(body: [UInt8], properties: AMQPProperties)] = []
        for (i, size) in sizes.enumerated() {
            let body = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }
            let properties = AMQPProperties(contentType: "application/octet-stream", messageId: "m-\(i)", correlationId: "c-\(i)",
                                            replyTo: "r", persistent: i % 2 == 0, expiration: "600000", timestamp: 1_700_000_000,
                                            headers: ["n": .int64(Int64(i)), "s": .string(String(repeating: "é", count: i)),
                                                      "t": .table(["inner": .bool(true)]), "b": .bytes([0, 255, 1])])
            published.append((body, properties))
            try await conn.publish(exchange: "", routingKey: queue, body: body, properties: properties, mandatory: true)
        }
        // A content header of ~100 KB: its frame is near frame_max too.
        let bigHeaders = AMQPProperties(messageId: "big-headers", headers: ["h": .string(String(repeating: "x", count: 100_000))])
        published.append(([7], bigHeaders))
        try await conn.publish(exchange: "", routingKey: queue, body: [7], properties: bigHeaders)

        let consumer = try await conn.consume(queue: queue)
        var received = 0
        for try await d in consumer.deliveries {
            let want = published[received]
            #expect(d.body == want.body, "body of \(want.body.count) bytes")
            #expect(d.properties == want.properties, "properties of message \(received)")
            try conn.ack(deliveryTag: d.deliveryTag)
            received += 1
            if received == published.count { break }
        }
        #expect(received == published.count)
        try await conn.deleteQueue(queue)
        await conn.close()
    }

    /// The first publish of a fresh connection (its encoding buffer still small)
    /// with headers larger than that buffer: sent, not a failed connection.
    @Test(.timeLimit(.minutes(2)), arguments: [5_000, 100_000])
    func aLargeHeaderFirstOnAFreshConnectionIsSent(headerBytes: Int) async throws {
        let conn = try await TestBroker.connect()
        let queue = try await conn.declareQueue(TestBroker.uniqueName("t.frames.first"), durable: false).name
        let properties = AMQPProperties(messageId: "first", headers: ["h": .string(String(repeating: "y", count: headerBytes))])
        try await conn.publish(exchange: "", routingKey: queue, body: Array(#"{"a":1}"#.utf8), properties: properties)
        #expect(conn.isOpen)
        let consumer = try await conn.consume(queue: queue)
        for try await d in consumer.deliveries {
            #expect(d.body == Array(#"{"a":1}"#.utf8))
            #expect(d.properties == properties)
            try conn.ack(deliveryTag: d.deliveryTag)
            break
        }
        try await conn.deleteQueue(queue)
        await conn.close()
    }
}
