@testable import DariBridge
@testable import DariBridgeApp
import FakeDari
import TestSupport
import Foundation
import Logging
import Prometheus
import Testing

/// The samples of a Prometheus text exposition: `name{labels}` (as written) -> value.
struct Scrape {
    var samples: [String: Double] = [:]
    var order: [String] = []
    var types: [String: String] = [:]

    init(_ text: String) throws {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                try #require(parts.count == 4, "bad TYPE line: \(line)")
                types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            let cut = try #require(line.lastIndex(of: " "), "bad sample: \(line)")
            let key = String(line[..<cut])
            let value = try #require(Double(line[line.index(after: cut)...]), "bad value: \(line)")
            try #require(samples[key] == nil, "duplicate series \(key)")
            samples[key] = value
            order.append(key)
        }
    }

    func value(_ key: String) throws -> Double { try #require(samples[key], "no series \(key)") }

    /// Label names used anywhere.
    var labelNames: Set<String> {
        var names = Set<String>()
        for key in order {
            guard let open = key.firstIndex(of: "{") else { continue }
            for pair in key[key.index(after: open)..<key.index(before: key.endIndex)].split(separator: ",") {
                names.insert(String(pair.prefix { $0 != "=" }))
            }
        }
        return names
    }

    /// A histogram's buckets in exposition order: (le, cumulative count); checks +Inf == _count.
    func checkHistogram(_ name: String, count expected: Int) throws {
        #expect(types[name] == "histogram", "\(name) is a histogram")
        let buckets = try order.filter { $0.hasPrefix(name + "_bucket{") }.map { key -> (String, Double) in
            let le = String(try #require(key.split(separator: "\"").dropFirst().first))
            return (le, try value(key))
        }
        try #require(buckets.count == PipelineMetrics.durationBuckets.count + 1, "\(name): \(buckets.count) buckets")
        #expect(buckets.last?.0 == "+Inf")
        let bounds = buckets.dropLast().compactMap { Double($0.0) }
        #expect(bounds == bounds.sorted() && bounds.first == 0.005 && bounds.last == 30, "\(name) buckets 5 ms .. 30 s: \(bounds)")
        for (a, b) in zip(buckets, buckets.dropFirst()) {
            #expect(a.1 <= b.1, "\(name): buckets are cumulative (le=\(a.0) \(a.1) > le=\(b.0) \(b.1))")
        }
        let count = try value(name + "_count")
        #expect(count == Double(expected), "\(name)_count")
        #expect(buckets.last?.1 == count, "\(name): +Inf == _count")
        #expect(try value(name + "_sum") >= 0)
    }
}

@Suite("/metrics after a known mix of messages")
struct MetricsScrapeTests {
    @Test func everyCountAndHistogramCountMatchesTheMessages() async throws {
        let fake = try await FakeDari.start(port: 0, defaultReply: .ok(), record: true)
        // A port where nothing listens: every attempt there is a connection error.
        let (deadFD, deadPort) = try loopbackSocket(listening: false)
        defer { close(deadFD) }
        let client = DariClient(concurrency: 8, policy: URLPolicy(allowedHosts: ["127.0.0.1:\(fake.port)", "127.0.0.1:\(deadPort)"],
                                                                 allowedPathPrefixes: ["/"], allowInsecureHTTP: true))
        fake.script(id: "final-404", [FakeDari.Reply(status: 404)])
        fake.script(id: "redirect", [FakeDari.Reply(status: 302)])
        fake.script(id: "always-503", [FakeDari.Reply(status: 503)])
        fake.script(id: "500-then-ok", [FakeDari.Reply(status: 500), .ok()])

        let registry = PrometheusCollectorRegistry()
        let factory = Application.prometheusFactory(registry)
        let metrics = PipelineMetrics(factory: factory)
        let brokerMetrics = BrokerMetrics(nodes: ["rabbit-a:5672", "rabbit-b:5672"], factory: factory)
        let broker = InMemoryBroker()
        let executor = ResumeExecutor(transport: client, policy: RetryPolicy(maxAttempts: 3), requestTimeout: .seconds(10),
                                      sleep: { _ in }, randomUnit: { 0.5 })
        let pipeline = ResumePipeline(
            settings: PipelineSettings(resultsExchange: "results", maxMessageBytes: 4096,
                                       urlPolicy: URLPolicy(allowedHosts: ["127.0.0.1:\(fake.port)", "127.0.0.1:\(deadPort)"],
                                                            allowedPathPrefixes: ["/"], allowInsecureHTTP: true)),
            executor: executor, broker: broker, metrics: metrics, logger: quietLogger)

        func message(_ url: String, tag: UInt64, headers: [String: String] = [:]) -> InboundMessage {
            InboundMessage(body: ResumeRequest.messageBody(resumeURL: url, variablesJSON: Array(#"{"a":1}"#.utf8)),
                           messageId: "m\(tag)", headers: headers, token: DeliveryToken(tag: tag, incarnation: 1))
        }
        let base = fake.baseURL + "/resume/"
        var messages: [InboundMessage] = []
        for i in 0..<3 { messages.append(message(base + "ok-\(i)", tag: UInt64(messages.count + 1))) }  // 3 x 2xx
        messages.append(message(base + "final-404", tag: UInt64(messages.count + 1)))     // 4xx, dari_error
        messages.append(message(base + "redirect", tag: UInt64(messages.count + 1)))      // 3xx, dari_error
        messages.append(message(base + "always-503", tag: UInt64(messages.count + 1)))    // 3 x 5xx, retries_exhausted
        messages.append(message(base + "500-then-ok", tag: UInt64(messages.count + 1)))   // 5xx + 2xx, succeeded
        messages.append(message("http://127.0.0.1:\(deadPort)/resume/dead", tag: UInt64(messages.count + 1)))  // 3 x error
        messages.append(message("https://evil.example/resume/x", tag: UInt64(messages.count + 1)))  // url_not_allowed
        messages.append(message(base + "limit", tag: UInt64(messages.count + 1), headers: [deliveryCountHeader: "9"]))  // delivery_limit
        for body in [Array("not json".utf8), Array(#"{"resumeUrl":1}"#.utf8)] {       // 2 x invalid_message
            messages.append(InboundMessage(body: body, token: DeliveryToken(tag: UInt64(messages.count + 1), incarnation: 1)))
        }
        let all = messages
        await withTaskGroup(of: Void.self) { group in
            for m in all { group.addTask { await pipeline.handle(m) } }
        }
        #expect(broker.events.count >= all.count)

        brokerMetrics.observe(ready: true, connectedNode: "rabbit-b:5672")
        let dariRequests = fake.requestCount
        try? await client.shutdown()
        try? await fake.shutdown()
        try await withHealthServer(registry: registry) { _, port in
            let answer = try await rawGET(port: port, "/metrics")
            #expect(answer.status == 200)
            let scrape = try Scrape(answer.text)

            let outcome = { (o: String) in try scrape.value(#"dari_bridge_messages_total{outcome="\#(o)"}"#) }
            #expect(try outcome("succeeded") == 4)
            #expect(try outcome("dari_error") == 2)
            #expect(try outcome("retries_exhausted") == 2)
            #expect(try outcome("url_not_allowed") == 1)
            #expect(try outcome("delivery_limit") == 1)
            #expect(try outcome("invalid_message") == 2)
            #expect(scrape.types["dari_bridge_messages_total"] == "counter")

            let status = { (c: String) in try scrape.value(#"dari_bridge_http_requests_total{status_class="\#(c)"}"#) }
            #expect(try status("2xx") == 4)
            #expect(try status("3xx") == 1)
            #expect(try status("4xx") == 1)
            #expect(try status("5xx") == 4)
            #expect(try status("error") == 3)
            #expect(try scrape.value("dari_bridge_http_attempts_total") == 13)
            #expect(dariRequests == 10, "the 2xx..5xx attempts reached Dari")

            try scrape.checkHistogram("dari_bridge_http_request_duration_seconds", count: 13)
            try scrape.checkHistogram("dari_bridge_message_duration_seconds", count: all.count)

            #expect(try scrape.value("dari_bridge_deliveries_received_total") == Double(all.count))
            #expect(try scrape.value("dari_bridge_in_flight") == 0)
            for zero in ["dari_bridge_outcomes_republished_from_memory_total", "dari_bridge_deferred_to_delay_queue_total",
                         "dari_bridge_publish_retries_total", "dari_bridge_deliveries_requeued_total",
                         "dari_bridge_reply_to_refused_total", "dari_bridge_broker_reconnects_total", "dari_bridge_acks_dropped_total",
                         "dari_bridge_consumer_stalls_total"] {
                #expect(try scrape.value(zero) == 0, "\(zero)")
            }
            #expect(try scrape.value("dari_bridge_ready") == 1)
            #expect(try scrape.value(#"dari_bridge_broker_connected{node="rabbit-b:5672"}"#) == 1)
            #expect(try scrape.value(#"dari_bridge_broker_connected{node="rabbit-a:5672"}"#) == 0)
            // Bounded labels only: never a URL, an id or a status code.
            #expect(scrape.labelNames == ["outcome", "status_class", "le", "node"])
            #expect(!answer.text.contains("resume/"), "no URL in the metrics")
        }
    }
}
