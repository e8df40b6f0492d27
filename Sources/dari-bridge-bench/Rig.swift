import Foundation
import RabbitMQ

/// What one run of the benchmark needs besides the worker: the fake Dari as a
/// process of its own, the queues, and (started by the run) the consumer and
/// publisher processes.
struct Rig {
    let dari: Child
    let dariPort: Int
    let conn: AMQPConnection
    let queue: String
    let exchange: String
    let results: String

    static func start(_ o: Options, delayMs: Int) async throws -> Rig {
        let dari = try Child(role: ["fake-dari", "--delay-ms", "\(delayMs)", "--threads", "\(o.dariThreads)"])
        guard let line = await dari.readLine(), line.hasPrefix("port "), let port = Int(line.dropFirst(5)) else {
            throw BenchError("fake-dari did not start")
        }
        let suffix = UUID().uuidString.prefix(8)
        let queue = "bench.requests.\(suffix)", exchange = "bench.results.\(suffix)", results = "bench.outcomes.\(suffix)"
        let conn = try await AMQPConnection.connect(to: try AMQPURL(parsing: o.amqpURL))
        try await conn.declareQueue(queue, durable: true)
        try await conn.declareExchange(exchange, type: "topic", durable: true)
        try await conn.declareQueue(results, durable: false)
        try await conn.bindQueue(results, exchange: exchange, routingKey: "#")
        return Rig(dari: dari, dariPort: port, conn: conn, queue: queue, exchange: exchange, results: results)
    }

    /// The outcome consumer, consuming once this returns.
    func consumer(_ o: Options, count: Int, delayMs: Int) async throws -> Child {
        let c = try Child(role: ["consume", "--amqp-url", o.amqpURL, "--queue", results, "--count", "\(count)", "--delay-ms", "\(delayMs)"])
        guard await c.readLine() == "ready" else { throw BenchError("consumer did not start") }
        return c
    }

    func publisher(_ o: Options, count: Int, rate: Double? = nil) throws -> Child {
        var args = ["publish", "--amqp-url", o.amqpURL, "--queue", queue, "--count", "\(count)", "--dari-url", "http://127.0.0.1:\(dariPort)"]
        if let rate { args += ["--rate", "\(rate)"] }
        return try Child(role: args)
    }

    /// The consumer's report (its last line before it waits for stdin to close).
    static func report(of consumer: Child) async throws -> ConsumerReport {
        guard let line = await consumer.readLine() else { throw BenchError("consumer ended without a report") }
        return try JSONDecoder().decode(ConsumerReport.self, from: Data(line.utf8))
    }

    /// Stops the fake Dari (returns the POSTs it answered) and deletes the queues.
    func tearDown() async throws -> Int {
        let lines = await dari.finish()
        let posts = lines.compactMap { $0.hasPrefix("requests ") ? Int($0.dropFirst(9)) : nil }.first ?? -1
        try await conn.deleteQueue(queue)
        try await conn.deleteQueue(results)
        await conn.close()
        return posts
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
