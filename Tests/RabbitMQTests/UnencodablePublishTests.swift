import Foundation
import Testing
@testable import RabbitMQ

/// A publish whose properties cannot be encoded fails alone, before a byte is
/// written; the connection stays up (librabbitmq writes the method frame before
/// it encodes the content header, so failing inside it broke the connection).
@Suite struct UnencodablePublishTests {
    @Test(arguments: ["correlation_id", "message_id", "reply_to", "content_type", "routing key", "headers"])
    func anUnencodablePublishFailsAloneAndTheConnectionStaysUp(_ field: String) async throws {
        let conn = try await TestBroker.connect()
        let queue = try await conn.declareQueue(TestBroker.uniqueName("t.unencodable"), durable: false, autoDelete: true).name
        let long = String(repeating: "\u{FFFD}", count: 100)  // 300 bytes: what 100 invalid bytes become
        var props = AMQPProperties()
        var routingKey = queue
        switch field {
        case "correlation_id": props.correlationId = long
        case "message_id": props.messageId = long
        case "reply_to": props.replyTo = long
        case "content_type": props.contentType = long
        case "routing key": routingKey = long
        default: props.headers = ["big": .longString(Array(repeating: 0x61, count: 200_000))]
        }
        await #expect(throws: AMQPError.self) {
            try await conn.publish(exchange: "", routingKey: routingKey, body: Array("x".utf8), properties: props)
        }
        do {
            try await conn.publish(exchange: "", routingKey: routingKey, body: Array("x".utf8), properties: props)
        } catch let e as AMQPError {
            #expect(e.kind == .unencodable)
        }
        #expect(conn.isOpen, "only that publish failed")
        try await conn.publish(exchange: "", routingKey: queue, body: Array("ok".utf8),
                               properties: AMQPProperties(correlationId: AMQPProperties.shortString(long)))
        #expect(try await conn.declareQueue(queue, durable: false, autoDelete: true).messageCount == 1)
        await conn.close()
    }

    @Test func shortStringCutsAtACharacterBoundary() {
        let s = String(repeating: "é", count: 200)  // 400 bytes
        let cut = try! #require(AMQPProperties.shortString(s))
        #expect(cut.utf8.count == 254)
        #expect(AMQPProperties.shortString("abc") == "abc")
        #expect(AMQPProperties.shortString(nil) == nil)
    }
}
