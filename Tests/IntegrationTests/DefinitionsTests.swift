import DariBridge
import FakeDari
import Foundation
import RabbitMQ
import Synchronization
import Testing

extension BrokerFaultSuites {
/// deploy/kubernetes/rabbitmq-definitions.json imported into the real test
/// broker: each user can do what it needs and nothing more, and the input
/// queue's delivery limit dead-letters a message that keeps coming back.
/// (scripts/validate-deploy.sh checks the file offline; this checks what
/// RabbitMQ makes of it.) The vhost and users go again at the end.
@Suite(.serialized) struct DefinitionsTests {
    static let file = FaultBroker.root.appendingPathComponent("deploy/kubernetes/rabbitmq-definitions.json").path
    static let vhost = "dari"
    static let input = "dari.resume.requests"
    static let users = ["dari-bridge-worker", "dari-bridge-publisher", "dari-bridge-keda"]

    /// rabbitmqctl against the test broker that scripts/test.sh started.
    func ctl(_ args: String...) throws -> String {
        let url = try Harness.brokerURL
        let env = ProcessInfo.processInfo.environment
        let r = try ProjectScript.run("rabbitmq.sh", ["ctl", "-q"] + args, environment: [
            "RABBIT_PORT": "\(url.port)",
            "RABBIT_NODE": env["RABBIT_NODE"] ?? env["DARI_TEST_RABBIT_NODE"] ?? "daribridge-test@localhost",
        ])
        guard r.status == 0 else { throw HarnessError("rabbitmqctl \(args.joined(separator: " ")): \(r.output)") }
        return r.output
    }

    func messages(_ queue: String) throws -> Int? {
        let out = try ctl("list_queues", "-p", Self.vhost, "name", "messages", "--formatter", "json")
        let rows = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]] ?? []
        return rows.first { $0["name"] as? String == queue }?["messages"] as? Int
    }

    /// The queue's message count once it equals `expected`, or the last one seen
    /// after 10 s (the counts of a quorum queue can lag a moment).
    func messages(_ queue: String, becomes expected: Int) async throws -> Int? {
        var seen = try messages(queue)
        for _ in 0..<100 where seen != expected {
            try await Task.sleep(for: .milliseconds(100))
            seen = try messages(queue)
        }
        return seen
    }

    /// Runs `body` on a fresh connection of `url` and returns the broker's reply code of its failure.
    func refusal(_ url: AMQPURL, _ body: (AMQPConnection) async throws -> Void) async -> UInt16? {
        guard let c = try? await AMQPConnection.connect(to: url) else { return nil }
        defer { Task { await c.close() } }
        do {
            try await body(c)
            return 0
        } catch let error as AMQPError {
            return error.replyCode
        } catch {
            return nil
        }
    }

    /// Imports the definitions and gives each user a fresh password; their URLs.
    func importDefinitions() async throws -> [String: AMQPURL] {
        _ = try ctl("import_definitions", Self.file)
        // The import is asynchronous.
        for _ in 0..<100 where try messages(Self.input) == nil { try await Task.sleep(for: .milliseconds(100)) }
        var urls: [String: AMQPURL] = [:]
        for u in Self.users {
            let password = UUID().uuidString
            _ = try ctl("change_password", u, password)
            var url = try Harness.brokerURL
            url.user = u
            url.password = password
            url.vhost = Self.vhost
            urls[u] = url
        }
        return urls
    }

    func removeDefinitions() {
        _ = try? ctl("delete_vhost", Self.vhost)
        for u in Self.users { _ = try? ctl("delete_user", u) }
    }

    @Test func eachUserCanDoWhatItNeedsAndNothingMore() async throws {
        defer { removeDefinitions() }
        let urls = try await importDefinitions()
        #expect(try await messages(Self.input, becomes: 0) == 0)
        let worker = try #require(urls["dari-bridge-worker"]), publisher = try #require(urls["dari-bridge-publisher"]), keda = try #require(urls["dari-bridge-keda"])

        // The publisher: its exchange of the input queue, nothing else.
        let p = try await AMQPConnection.connect(to: publisher)
        try await p.publish(exchange: Self.input, routingKey: "", body: Array(#"{"m":1}"#.utf8),
                            properties: AMQPProperties(messageId: "def-1", persistent: true), mandatory: true)
        await p.close()
        #expect(try await messages(Self.input, becomes: 1) == 1)
        #expect(await refusal(publisher) { try await $0.publish(exchange: "", routingKey: Self.input, body: [1]) } == 403)
        #expect(await refusal(publisher) { try await $0.publish(exchange: "dari.resume.results", routingKey: "x", body: [1]) } == 403)
        #expect(await refusal(publisher) { _ = try await $0.declareQueue("elsewhere", durable: true) } == 403)
        #expect(await refusal(publisher) { _ = try await $0.consume(queue: Self.input) } == 403)

        // The worker: what the worker does (results exchange, a delay queue
        // as RabbitMQBroker declares it, outcomes, consuming the input).
        let w = try await AMQPConnection.connect(to: worker)
        try await w.declareExchange("dari.resume.results", type: "topic", durable: true)
        let delay = "\(Self.input).qdelay.30s"
        _ = try await w.declareQueue(delay, durable: true, arguments: [
            "x-message-ttl": .int(30_000), "x-dead-letter-exchange": .string(""),
            "x-dead-letter-routing-key": .string(Self.input), "x-expires": .int(120_000),
            "x-queue-type": .string("quorum"), "x-dead-letter-strategy": .string("at-least-once"), "x-overflow": .string("reject-publish"),
        ])
        try await w.publish(exchange: "dari.resume.results", routingKey: "resume.succeeded", body: Array("{}".utf8), properties: AMQPProperties(persistent: true))
        try await w.publish(exchange: "", routingKey: delay, body: Array("{}".utf8), properties: AMQPProperties(persistent: true), mandatory: true)
        #expect(try await messages("dari.resume.results.example", becomes: 1) == 1)
        // The input's delivery limit (20): a message rejected with requeue
        // every time is dead-lettered to dari.resume.dead after its 21st delivery.
        let consumer = try await w.consume(queue: Self.input)
        let count = Mutex(0)
        let rejecter = Task {
            for try await d in consumer.deliveries {
                count.withLock { $0 += 1 }
                try w.reject(deliveryTag: d.deliveryTag, requeue: true)
            }
        }
        #expect(try await messages("dari.resume.dead", becomes: 1) == 1)
        #expect(try await messages(Self.input, becomes: 0) == 0)
        rejecter.cancel()
        await w.close()
        let deliveries = count.withLock { $0 }
        #expect(deliveries == 21)
        #expect(await refusal(worker) { _ = try await $0.declareQueue("elsewhere", durable: true) } == 403)
        #expect(await refusal(worker) { try await $0.publish(exchange: Self.input, routingKey: "", body: [1]) } == 403)

        // KEDA's user: it may connect (a passive declare needs no permission), nothing more.
        #expect(await refusal(keda) { _ = try await $0.consume(queue: Self.input) } == 403)
        #expect(await refusal(keda) { try await $0.publish(exchange: "", routingKey: Self.input, body: [1]) } == 403)
    }

    /// The worker process under its own user, on the pre-declared quorum input
    /// queue (delivery limit, DLX: used as it is), publishers through theirs.
    @Test func theWorkerRunsUnderItsOwnUser() async throws {
        defer { removeDefinitions() }
        let urls = try await importDefinitions()
        let worker = try #require(urls["dari-bridge-worker"]), publisher = try #require(urls["dari-bridge-publisher"])
        let dari = try await FakeDari.start(defaultReply: .ok(#"{"ok":true}"#))
        let process = try WorkerProcess(environment: [
            "AMQP_URL": "amqp://\(worker.user):\(worker.password)@127.0.0.1:\(worker.port)/\(Self.vhost)",
            "DARI_BRIDGE_ALLOWED_HOSTS": "127.0.0.1:\(dari.port)",
            "DARI_BRIDGE_ALLOW_INSECURE_HTTP": "true",
            "DARI_BRIDGE_HTTP_PORT": "0",
            "DARI_BRIDGE_LOG_LEVEL": "info",
        ])
        let p = try await AMQPConnection.connect(to: publisher)
        for i in 0..<20 {
            let body = ResumeRequest.messageBody(resumeURL: "http://127.0.0.1:\(dari.port)/public/send-user-signal/d\(i)", variablesJSON: Array(#"{"i":\#(i)}"#.utf8))
            try await p.publish(exchange: Self.input, routingKey: "", body: body, properties: AMQPProperties(messageId: "d\(i)", persistent: true), mandatory: true)
        }
        await p.close()
        let outcomes = try await messages("dari.resume.results.example", becomes: 20)
        let left = try await messages(Self.input, becomes: 0)
        process.signal(SIGTERM)
        let status = await process.waitForExit(timeout: .seconds(30))
        try? await dari.shutdown()
        #expect(outcomes == 20, "worker log:\n\(process.log.suffix(3000))")
        #expect(left == 0)
        #expect(dari.requestCount == 20)
        #expect(status == 0)
        #expect(!process.log.contains("ACCESS_REFUSED"), "\(process.log.suffix(3000))")
    }
}
}  // extension BrokerFaultSuites
