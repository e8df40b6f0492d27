import DariBridge
import RabbitMQ

/// What the worker declares. The input queue and the results exchange are
/// checked passively first and used as they are, whatever their type and
/// arguments (an operator's pre-declared quorum queue with a delivery limit
/// and a DLX, a classic queue with a max length...): redeclaring an existing
/// queue with other arguments would fail with 406 PRECONDITION_FAILED. Only a
/// missing one is declared: the queue with DARI_BRIDGE_QUEUE_TYPE, the exchange
/// as a durable topic exchange.
///
/// RabbitMQ answers a passive declare of a missing queue or exchange by
/// closing the channel (404 NOT_FOUND), and our connection has the one channel:
/// the declare then goes on a new connection to the same node.
extension Configuration {
    /// The arguments a missing input queue is declared with (worker and `publish` alike).
    var inputQueueArguments: [String: AMQPArgument] {
        switch queueType {
        case .quorum: return ["x-queue-type": "quorum"]
        case .classic: return [:]
        }
    }
}

extension RabbitMQBroker {
    func ensureTopology(on conn: AMQPConnection, url: AMQPURL) async throws -> AMQPConnection {
        var conn = conn
        do {
            try await conn.checkExchange(config.resultsExchange)
        } catch let e as AMQPError where e.replyCode == 404 {
            conn = try await reopen(conn, url: url)
            try await conn.declareExchange(config.resultsExchange, type: "topic", durable: true)
            logger.info("declared the results exchange", metadata: ["exchange": "\(config.resultsExchange)"])
        }
        do {
            try await conn.checkQueue(config.queue)
        } catch let e as AMQPError where e.replyCode == 404 {
            conn = try await reopen(conn, url: url)
            try await conn.declareQueue(config.queue, durable: true, arguments: inputQueueArguments)
            logger.info("declared the input queue", metadata: ["queue": "\(config.queue)", "type": "\(config.queueType.rawValue)"])
        }
        conn = try await ensureWebhookExchange(on: conn, url: url)  // RabbitMQBroker+Webhooks.swift
        return conn
    }

    var inputQueueArguments: [String: AMQPArgument] { config.inputQueueArguments }

    private func reopen(_ conn: AMQPConnection, url: AMQPURL) async throws -> AMQPConnection {
        await conn.close()
        return try await AMQPConnection.connect(to: url, options: connectionOptions, logger: logger)
    }

    /// The delay queue for a wait of `seconds`: a message TTL and a
    /// dead-letter route back to the input queue through the default exchange.
    ///
    /// With DARI_BRIDGE_QUEUE_TYPE=quorum (the default) they are quorum queues,
    /// so a deferred message survives the loss of a node: message TTL and
    /// dead-lettering work on quorum queues from RabbitMQ 3.10, and
    /// `x-dead-letter-strategy: at-least-once` (3.10+, needs `x-overflow:
    /// reject-publish`) keeps the message in the delay queue until the input
    /// queue confirmed it; the default at-most-once strategy could drop it if
    /// the dead-lettering failed. They have their own names (`.qdelay.`), so a
    /// classic `.delay.` queue left from an earlier version never clashes.
    ///
    /// They expire when unused for twice their delay plus a minute (quorum
    /// ones: a week, see below); publishing
    /// does not count as use for `x-expires`, so the queue is declared again
    /// before every hand-off (which renews the lease, and re-creates a queue
    /// that expired or was deleted).
    func delayQueue(seconds: Int) -> (name: String, arguments: [String: AMQPArgument]) {
        let ttl = Int64(seconds) * 1000
        var arguments: [String: AMQPArgument] = [
            "x-message-ttl": .int(ttl),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": .string(config.queue),
            "x-expires": .int(ttl * 2 + 60_000),
        ]
        switch config.queueType {
        case .classic:
            return ("\(config.queue).delay.\(seconds)s", arguments)
        case .quorum:
            arguments["x-queue-type"] = "quorum"
            arguments["x-dead-letter-strategy"] = "at-least-once"
            arguments["x-overflow"] = "reject-publish"
            // At-least-once dead-lettering keeps a message here while the input
            // queue cannot take it (deleted, no leader, node down), but x-expires
            // would delete the queue, messages and all, during just such an
            // outage (nothing renews the lease then). A week instead.
            arguments["x-expires"] = .int(7 * 24 * 3_600_000)
            return ("\(config.queue).qdelay.\(seconds)s", arguments)
        }
    }
}
