import DariBridge
import DariBridgeApp
import FakeDari
import Foundation
import Logging
import RabbitMQ
import Synchronization
import Testing

/// The real worker pieces (RabbitMQ adapter, pipeline, AsyncHTTPClient) in
/// this process, against the real broker started by scripts/test.sh and a
/// FakeDari on loopback. Each harness has its own queue and exchange.
final class Harness: Sendable {
    let dari: FakeDari
    let config: Configuration
    let broker: RabbitMQBroker
    let pipeline: ResumePipeline
    let client: DariClient
    let observer: AMQPConnection
    let publisher: AMQPConnection
    let resultsQueue: String
    let outcomes = Mutex<[ReceivedOutcome]>([])
    let tasks = Mutex<[Task<Void, Never>]>([])

    static var brokerURL: AMQPURL {
        get throws {
            guard let text = ProcessInfo.processInfo.environment["DARI_TEST_AMQP_URL"] else {
                throw HarnessError("DARI_TEST_AMQP_URL is not set: run the tests with scripts/test.sh, which starts RabbitMQ")
            }
            return try AMQPURL(parsing: text)
        }
    }

    init(concurrency: Int = 32, maxAttempts: Int = 3, dariDefault: FakeDari.Reply = .ok(#"{"ok":true}"#), logger: Logger? = nil,
         inputQueueArguments: [String: AMQPArgument] = [:], configure: (inout Configuration) -> Void = { _ in }) async throws {
        dari = try await FakeDari.start(defaultReply: dariDefault)
        let suffix = UUID().uuidString.prefix(8)
        var c = Configuration()
        c.amqpURLs = [try Self.brokerURL]
        c.queue = "it.requests.\(suffix)"
        c.resultsExchange = "it.results.\(suffix)"
        c.allowedHosts = ["127.0.0.1:\(dari.port)"]
        c.allowInsecureHTTP = true
        c.concurrency = concurrency
        c.maxAttempts = maxAttempts
        c.initialBackoffMs = 10
        c.maxBackoffMs = 50
        c.requestTimeoutMs = 5_000
        c.httpPort = 0
        c.reconnectInitialMs = 100
        c.reconnectMaxMs = 1_000
        configure(&c)
        config = c
        let logger = logger ?? {
            var l = Logger(label: "it")
            l.logLevel = .warning
            return l
        }()
        let client = DariClient(concurrency: c.concurrency, policy: c.urlPolicy)
        self.client = client
        broker = RabbitMQBroker(config: c, logger: logger)
        pipeline = ResumePipeline(
            settings: c.pipelineSettings,
            executor: c.executor(transport: client),
            broker: broker, logger: logger)

        var options = AMQPConnection.Options()
        options.tls = c.tlsOptions
        // An HTTPClient that is not shut down traps in its deinit (AsyncHTTPClient): a broker
        // that cannot be reached must fail this test, not crash the whole test process.
        do {
            observer = try await AMQPConnection.connect(to: c.amqpURLs[0], options: options)
            try await Self.prepare(observer, c, inputQueueArguments)
        } catch {
            try? await client.shutdown()
            try? await dari.shutdown()
            throw error
        }
        resultsQueue = try await observer.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
        try await observer.bindQueue(resultsQueue, exchange: c.resultsExchange, routingKey: "#")
        publisher = try await AMQPConnection.connect(to: c.amqpURLs[0], options: options)
        let consumer = try await observer.consume(queue: resultsQueue)
        let observerConn = observer
        let sink = Task { [self] in
            do {
                for try await d in consumer.deliveries {
                    let o = ReceivedOutcome(d)
                    self.outcomes.withLock { $0.append(o) }
                    try? observerConn.ack(deliveryTag: d.deliveryTag)
                }
            } catch {}
        }
        tasks.withLock { $0.append(sink) }
    }

    private static func prepare(_ observer: AMQPConnection, _ c: Configuration, _ inputQueueArguments: [String: AMQPArgument]) async throws {
        try await observer.declareExchange(c.resultsExchange, type: "topic", durable: true)
        try await observer.declareQueue(c.queue, durable: true, arguments: inputQueueArguments)
    }

    var dariURL: String { "http://127.0.0.1:\(dari.port)/public/send-user-signal" }

    func url(_ id: String) -> String { "\(dariURL)/\(id)" }

    let worker = Mutex<(broker: Task<Void, Never>, pipeline: Task<Void, Never>)?>(nil)

    /// Starts the worker (broker service + pipeline) in this process.
    func startWorker() {
        let broker = self.broker, pipeline = self.pipeline
        let t1 = Task { await broker.run() }
        let t2 = Task { await pipeline.process(broker.deliveries, isStopping: { broker.isStopping }) }
        worker.withLock { $0 = (t1, t2) }
    }

    func publish(body: [UInt8], messageId: String? = nil, correlationId: String? = nil, replyTo: String? = nil, headers: AMQPTable = AMQPTable()) async throws {
        try await publisher.publish(exchange: "", routingKey: config.queue, body: body,
                                    properties: AMQPProperties(contentType: "application/json", messageId: messageId, correlationId: correlationId,
                                                               replyTo: replyTo, persistent: true, headers: headers),
                                    mandatory: true)
    }

    func publish(id: String, variables: String = #"{"answer":"yes"}"#, messageId: String? = nil, correlationId: String? = nil, replyTo: String? = nil, headers: AMQPTable = AMQPTable()) async throws {
        let body = ResumeRequest.messageBody(resumeURL: url(id), variablesJSON: Array(variables.utf8))
        try await publish(body: body, messageId: messageId ?? id, correlationId: correlationId, replyTo: replyTo, headers: headers)
    }

    var received: [ReceivedOutcome] { outcomes.withLock { $0 } }

    /// Waits (polling) until `count` outcomes arrived or `timeout` passed.
    @discardableResult
    func waitForOutcomes(_ count: Int, timeout: Duration = .seconds(30)) async -> [ReceivedOutcome] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let got = received
            if got.count >= count { return got }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return received
    }

    func outcome(for messageId: String) -> ReceivedOutcome? {
        received.first { $0.messageId == messageId }
    }

    /// Stops the worker and deletes the input queue. Returns how many messages
    /// were still on it (unacked ones are back on it once the worker's
    /// connection is closed), nil if the delete failed.
    @discardableResult
    func stop() async -> UInt32? {
        await broker.stopConsuming()
        let started = worker.withLock { $0 }
        await started?.pipeline.value
        await broker.close()  // ends the broker's run()
        await started?.broker.value
        let left = try? await observer.deleteQueue(config.queue)
        await observer.close()
        await publisher.close()
        for t in tasks.withLock({ $0 }) { t.cancel() }
        try? await client.shutdown()
        try? await dari.shutdown()
        return left
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// An outcome as the results exchange delivered it.
struct ReceivedOutcome: Sendable {
    struct Body: Decodable, Sendable {
        var status: String
        var resume_workflow_url: String?
        var message_id: String?
        var correlation_id: String?
        var attempts: Int
        var http_status: Int?
        var error: String?
        var detail: String?
        var received_at: String
        var completed_at: String
    }
    var raw: [UInt8]
    var body: Body?
    var routingKey: String
    var properties: AMQPProperties

    init(_ d: AMQPDelivery) {
        raw = d.body
        body = try? JSONDecoder().decode(Body.self, from: Data(d.body))
        routingKey = d.routingKey
        properties = d.properties
    }

    var messageId: String? { body?.message_id }
    var text: String { String(decoding: raw, as: UTF8.self) }
}
