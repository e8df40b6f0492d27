import DariBridge
import FakeDari
import Foundation
import RabbitMQ

// `dari-bridge-bench --oversized`: the memory cost of oversized input. Pre-loads
// 16 messages of 48 MiB (over the worker's 1 MiB DARI_BRIDGE_MAX_MESSAGE_BYTES)
// and 4 normal ones, runs the release worker as its own process at the first
// --concurrency (scripts/oversized-rss.sh passes 64), and reports its peak RSS
// (VmHWM, sampled every 20 ms and read once more before it stops) and whether
// every message got an outcome. A measurement, not a test: nothing asserts.

struct OversizedResult: Codable {
    var concurrency: Int
    var oversizedMessages: Int
    var oversizedMiB: Int
    var normalMessages: Int
    var outcomes: Int
    var invalidMessage: Int
    var succeeded: Int
    var seconds: Double
    var peakRSSMB: Double
    var peakAnonMB: Double
}

func runOversized(_ o: Options, count: Int = 16, mib: Int = 48, normal: Int = 4) async throws -> OversizedResult {
    let concurrency = o.concurrency.first ?? 64
    let dari = try await FakeDari.start(record: false)
    let url = try AMQPURL(parsing: o.amqpURL)
    let suffix = UUID().uuidString.prefix(8)
    let queue = "bench.oversized.\(suffix)", exchange = "bench.oversized.results.\(suffix)"
    let conn = try await AMQPConnection.connect(to: url)
    try await conn.declareQueue(queue, durable: true)
    try await conn.declareExchange(exchange, type: "topic", durable: true)
    let results = try await conn.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
    try await conn.bindQueue(results, exchange: exchange, routingKey: "#")

    let publisher = try await AMQPConnection.connect(to: url)
    let variables = Array(#"{"user_response":"approved"}"#.utf8)
    func target(_ id: String) -> String { "http://127.0.0.1:\(dari.port)/public/send-user-signal/\(id)" }
    // A valid request padded inside `variables` to `mib` MiB: only its size is wrong.
    var big = Array(#"{"resume_workflow_url":""#.utf8) + Array(target("big").utf8) + Array(#"","variables":{"pad":""#.utf8)
    big += Array(repeating: UInt8(ascii: "x"), count: max(mib * 1_048_576 - big.count - 3, 0))
    big += Array(#""}}"#.utf8)
    for i in 0..<count {
        try await publisher.publish(exchange: "", routingKey: queue, body: big,
                                    properties: AMQPProperties(contentType: "application/json", messageId: "big\(i)", persistent: false))
    }
    for i in 0..<normal {
        try await publisher.publish(exchange: "", routingKey: queue, body: ResumeRequest.messageBody(resumeURL: target("n\(i)"), variablesJSON: variables),
                                    properties: AMQPProperties(contentType: "application/json", messageId: "n\(i)", persistent: false))
    }
    await publisher.close()
    big = []

    let consumer = try await conn.consume(queue: results)
    let start = now()
    let worker = try startWorker(o, queue: queue, exchange: exchange, dariPort: dari.port, concurrency: concurrency)
    let pid = worker.processIdentifier
    let sampler = Task {
        var peak = 0.0, anon = 0.0
        while !Task.isCancelled {
            peak = max(peak, procStatus(pid, "VmHWM") ?? 0)
            anon = max(anon, procStatus(pid, "RssAnon") ?? 0)
            try? await Task.sleep(for: .milliseconds(20))
        }
        return (peak, anon)
    }
    var seen = Set<String>()
    var invalid = 0, succeeded = 0
    // Gives up after 5 minutes (a worker that never answers): cancelling the consumer ends the loop.
    let deadline = Task {
        try? await Task.sleep(for: .seconds(300))
        if !Task.isCancelled { try? await conn.cancel(consumerTag: consumer.tag) }
    }
    for try await d in consumer.deliveries {
        try conn.ack(deliveryTag: d.deliveryTag)
        let text = String(decoding: d.body, as: UTF8.self)
        guard let r = text.range(of: #""message_id":""#), let end = text[r.upperBound...].firstIndex(of: "\""),
              seen.insert(String(text[r.upperBound..<end])).inserted else { continue }
        if text.contains(#""error":"invalid_message""#) { invalid += 1 }
        if text.contains(#""status":"succeeded""#) { succeeded += 1 }
        if seen.count == count + normal { break }
    }
    deadline.cancel()
    let seconds = Double(now() - start) / 1e9
    let finalPeak = procStatus(pid, "VmHWM") ?? 0
    sampler.cancel()
    let (peak, anon) = await sampler.value
    await stopWorker(worker)
    try await conn.deleteQueue(queue)
    await conn.close()
    try await dari.shutdown()
    return OversizedResult(concurrency: concurrency, oversizedMessages: count, oversizedMiB: mib, normalMessages: normal,
                           outcomes: seen.count, invalidMessage: invalid, succeeded: succeeded, seconds: seconds,
                           peakRSSMB: max(peak, finalPeak) / 1024, peakAnonMB: anon / 1024)
}

/// Runs the oversized measurement, prints one line, writes `--json`; the exit
/// status is 1 when a message got no outcome.
func oversizedMode(_ o: Options) async throws -> Int32 {
    let r = try await runOversized(o)
    print("oversized: \(r.oversizedMessages) x \(r.oversizedMiB) MiB + \(r.normalMessages) normal, concurrency \(r.concurrency): "
          + "outcomes \(r.outcomes) (invalid_message \(r.invalidMessage), succeeded \(r.succeeded)) in \(String(format: "%.1f", r.seconds)) s; "
          + "worker peak RSS \(String(format: "%.1f", r.peakRSSMB)) MB (private \(String(format: "%.1f", r.peakAnonMB)) MB)")
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try FileManager.default.createDirectory(atPath: (o.json as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try encoder.encode(r).write(to: URL(fileURLWithPath: o.json))
    return r.outcomes == r.oversizedMessages + r.normalMessages ? 0 : 1
}
