import DariBridge
import RabbitMQ

/// Publishing, hand-offs to delay queues, acks and requeues.
extension RabbitMQBroker {
    package func publish(_ message: OutgoingMessage) async throws(PublishFailure) {
        guard let conn = state.withLock({ $0.connection }), conn.isOpen else {
            throw .transient("not connected to the broker")
        }
        do {
            try await conn.publish(
                exchange: message.exchange, routingKey: message.routingKey, body: message.body,
                properties: AMQPProperties(contentType: message.contentType, messageId: message.messageId,
                                           correlationId: AMQPProperties.shortString(message.correlationId),
                                           persistent: message.persistent,
                                           headers: message.headers.isEmpty ? AMQPTable() : AMQPTable(strings: message.headers)),
                mandatory: message.mandatory)
        } catch let error as AMQPError where error.kind == .returned {
            throw .unroutable(error.text)
        } catch let error as AMQPError where error.kind == .unencodable && message.mandatory {
            // Only the reply_to copy names a destination from the message.
            throw .unroutable(error.text)
        } catch {
            throw .transient("\(error)")
        }
    }

    /// Delay queues are per delay, rounded up to whole seconds (see `delayQueue`).
    /// The message goes there as it came (its header table passed on with every
    /// type), with `x-dari-attempts` set and the input queue's `x-delivery-count`
    /// left out: the copy is a new message, its deliveries are counted anew.
    package func deferMessage(_ message: InboundMessage, attempts: Int, delay: Duration) async throws(PublishFailure) {
        guard let conn = state.withLock({ $0.connection }), conn.isOpen else {
            throw .transient("not connected to the broker")
        }
        let seconds = max(1, Int((delay + .milliseconds(999)).components.seconds))
        let queue = delayQueue(seconds: seconds)
        var headers = (message.brokerContext as? AMQPTable) ?? AMQPTable(strings: message.headers)
        headers[deliveryCountHeader] = nil
        headers[attemptsHeader] = .int(Int64(attempts))
        // Passed on as they came, unless they no longer fit in one frame (keys and
        // strings that were not UTF-8 grow when re-encoded): then the text ones.
        if headers.encodedSize > 100_000 {
            headers = AMQPTable(strings: message.headers.filter { $0.key != deliveryCountHeader })
            headers[attemptsHeader] = .int(Int64(attempts))
        }
        do {
            try await conn.declareQueue(queue.name, durable: true, arguments: queue.arguments)
            try await conn.publish(
                exchange: "", routingKey: queue.name, body: message.body,
                properties: AMQPProperties(contentType: "application/json", messageId: AMQPProperties.shortString(message.messageId),
                                           correlationId: AMQPProperties.shortString(message.correlationId),
                                           replyTo: AMQPProperties.shortString(message.replyTo),
                                           persistent: true, headers: headers),
                mandatory: true)
        } catch {
            throw .transient("\(error)")
        }
    }

    package func ack(_ token: DeliveryToken) async {
        guard let (conn, activity) = liveConnection(for: token), (try? conn.ack(deliveryTag: token.tag)) != nil else {
            droppedAcks.add(1, ordering: .relaxed)
            metrics.acksDropped.increment()
            logger.debug("ack dropped: its channel is gone; the broker will redeliver", metadata: ["tag": "\(token.tag)"])
            return
        }
        activity?.settled.add(1, ordering: .relaxed)
    }

    package func requeue(_ token: DeliveryToken) async {
        guard let (conn, activity) = liveConnection(for: token) else { return }
        try? conn.reject(deliveryTag: token.tag, requeue: true)
        activity?.settled.add(1, ordering: .relaxed)
    }

    package func isLive(_ token: DeliveryToken) -> Bool {
        liveConnection(for: token) != nil
    }

    /// The token's connection when it is still the current one and open, with
    /// its consumer activity (what the watchdog counts as held unacked).
    private func liveConnection(for token: DeliveryToken) -> (AMQPConnection, ConsumerActivity?)? {
        guard let (conn, activity) = state.withLock({ s in s.connection.map { ($0, s.activity) } }),
              conn.incarnation == token.incarnation, conn.isOpen else { return nil }
        return (conn, activity)
    }
}

extension InboundMessage {
    /// Text view of the headers for the pipeline: valid UTF-8 strings of at
    /// most this many bytes and integers in decimal; the whole table (every
    /// type) rides along as `brokerContext` for a hand-off to a delay queue.
    static let maxHeaderTextBytes = 1024

    init(_ d: AMQPDelivery) {
        var text: [String: String] = [:]
        for entry in d.properties.headers.entries where text[entry.key] == nil {
            if let n = entry.value.integerValue, entry.value.stringValue == nil {
                text[entry.key] = String(n)
            } else if let s = entry.value.stringValue, s.utf8.count <= Self.maxHeaderTextBytes {
                text[entry.key] = s
            }
        }
        self.init(body: d.body, messageId: d.properties.messageId, correlationId: d.properties.correlationId,
                  replyTo: d.properties.replyTo, headers: text, redelivered: d.redelivered,
                  token: DeliveryToken(tag: d.deliveryTag, incarnation: d.channelIncarnation),
                  bodySize: Int(clamping: d.bodySize), bodyDiscarded: d.bodyDiscarded,
                  brokerContext: d.properties.headers.isEmpty ? nil : d.properties.headers)
    }
}
