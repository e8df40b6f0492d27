import DariBridge
import FakeDari
import Foundation
import RabbitMQ

// The processes a deployment has besides the worker, each started by the
// orchestrator as `dari-bridge-bench <role> ...` (this executable):
//
//   fake-dari --delay-ms D --threads T
//       prints "port P", serves until stdin closes, then prints "requests N"
//   publish --amqp-url U --queue Q --count N --dari-url BASE [--rate R]
//       publishes N persistent resume requests (confirmed) to Q, 1,000 in flight,
//       or open loop at R msg/s (each publish on time, confirms not awaited in
//       line); every message_id is "<index>.<CLOCK_MONOTONIC ns at publish>";
//       prints "published N <seconds>", then waits for stdin to close
//   consume --amqp-url U --queue Q --count N --delay-ms D
//       prints "ready" once consuming, then, after N distinct outcomes, one JSON
//       line (ConsumerReport): latency = receipt - publish stamp (from the
//       outcome's message_id), and that minus D; waits for stdin to close

func roleArgs() -> [String: String] {
    var out: [String: String] = [:]
    var args = Array(CommandLine.arguments.dropFirst(2))[...]
    while let a = args.popFirst() { out[a] = args.popFirst() ?? "" }
    return out
}

func runFakeDariRole() async throws {
    let a = roleArgs()
    let delay = Int(a["--delay-ms"] ?? "") ?? 0
    let dari = try await FakeDari.start(defaultReply: FakeDari.Reply(status: 200, body: #"{"ok":true}"#, delay: .milliseconds(delay)),
                                        record: false, eventLoopThreads: max(1, Int(a["--threads"] ?? "") ?? 1))
    say("port \(dari.port)")
    await stdinClosed()
    say("requests \(dari.requestCount)")
    try await dari.shutdown()
}

func runPublishRole() async throws {
    let a = roleArgs()
    let n = Int(a["--count"] ?? "") ?? 0
    let queue = a["--queue"] ?? ""
    let base = a["--dari-url"] ?? ""
    let rate = Double(a["--rate"] ?? "")
    let publisher = try await AMQPConnection.connect(to: try AMQPURL(parsing: a["--amqp-url"] ?? ""))
    let variables = Array(#"{"user_response":"approved","amount":12.5,"ok":true}"#.utf8)
    @Sendable func publish(_ j: Int) async throws {
        let body = ResumeRequest.messageBody(resumeURL: "\(base)/public/send-user-signal/s\(j)", variablesJSON: variables)
        try await publisher.publish(exchange: "", routingKey: queue, body: body,
                                    properties: AMQPProperties(contentType: "application/json", messageId: "\(j).\(monotonicNanos())", persistent: true))
    }
    let t0 = monotonicNanos()
    if let rate, rate > 0 {
        try await withThrowingDiscardingTaskGroup { group in
            var j = 0
            while j < n {
                let due = t0 + UInt64(Double(j) * 1e9 / rate)
                let t = monotonicNanos()
                if t < due {
                    try await Task.sleep(for: .nanoseconds(Int64(due - t)))
                    continue
                }
                let k = j
                group.addTask { try await publish(k) }
                j += 1
            }
        }
    } else {
        var i = 0
        while i < n {
            let batch = i..<min(n, i + 1000)
            try await withThrowingDiscardingTaskGroup { group in
                for j in batch { group.addTask { try await publish(j) } }
            }
            i = batch.upperBound
        }
    }
    say("published \(n) \(Double(monotonicNanos() - t0) / 1e9)")
    await publisher.close()
    await stdinClosed()
}

struct ConsumerReport: Codable {
    var count: Int
    var duplicates: Int
    var firstNs: UInt64
    var lastNs: UInt64
    var p50Ms: Double
    var p99Ms: Double
    var p999Ms: Double
    /// Latency minus Dari's delay: what the worker (and the broker legs) add.
    var addedP50Ms: Double
    var addedP99Ms: Double
    var addedP999Ms: Double
    var addedMaxMs: Double
}

func runConsumeRole() async throws {
    let a = roleArgs()
    let n = Int(a["--count"] ?? "") ?? 0
    let delayMs = Double(a["--delay-ms"] ?? "") ?? 0
    let conn = try await AMQPConnection.connect(to: try AMQPURL(parsing: a["--amqp-url"] ?? ""))
    try await conn.qos(prefetchCount: 2000)
    let consumer = try await conn.consume(queue: a["--queue"] ?? "")
    say("ready")
    var seen = [Bool](repeating: false, count: n)
    var count = 0, duplicates = 0
    var latencies: [Double] = []
    latencies.reserveCapacity(n)
    var first: UInt64 = 0, last: UInt64 = 0
    let key = Array(#""message_id":""#.utf8)
    for try await d in consumer.deliveries {
        let t = monotonicNanos()
        if d.deliveryTag % 500 == 0 { try conn.ack(deliveryTag: d.deliveryTag, multiple: true) }
        // The outcome's message_id (in its JSON body) is the input's: "<index>.<publish ns>".
        guard let r = d.body.firstRange(of: key),
              let endQuote = d.body[r.upperBound...].firstIndex(of: UInt8(ascii: "\"")) else { continue }
        let parts = String(decoding: d.body[r.upperBound..<endQuote], as: UTF8.self).split(separator: ".")
        guard parts.count == 2, let j = Int(parts[0]), let stamp = UInt64(parts[1]), j >= 0, j < n else { continue }
        if seen[j] { duplicates += 1; continue }
        seen[j] = true
        count += 1
        latencies.append(Double(Int64(t) - Int64(stamp)) / 1e6)
        if first == 0 { first = t }
        last = t
        if count == n {
            try conn.ack(deliveryTag: d.deliveryTag, multiple: true)
            break
        }
    }
    latencies.sort()
    func pct(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
    let report = ConsumerReport(count: count, duplicates: duplicates, firstNs: first, lastNs: last,
                                p50Ms: pct(0.5), p99Ms: pct(0.99), p999Ms: pct(0.999),
                                addedP50Ms: pct(0.5) - delayMs, addedP99Ms: pct(0.99) - delayMs, addedP999Ms: pct(0.999) - delayMs,
                                addedMaxMs: (latencies.last ?? 0) - delayMs)
    say(String(decoding: try JSONEncoder().encode(report), as: UTF8.self))
    await stdinClosed()
    await conn.close()
}
