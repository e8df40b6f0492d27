import AsyncHTTPClient
import DariBridge
import Foundation
import NIOCore
import RabbitMQ
import Synchronization

// `dari-bridge-bench webhooks`: a load client in its own process for the
// webhook receiver. Pre-signs N unique webhooks (half "webhook and wait"
// bodies), binds a queue to the webhook exchange so they are routed (a
// webhook no queue takes is answered 503), then sends them over C keep-alive
// connections and reports webhooks/s (first send to last answer), the
// statuses and the latency percentiles. Not a test: nothing asserts.
//
//   dari-bridge-bench webhooks --url http://127.0.0.1:8080/webhooks/dari --secret S
//       [--amqp-url URL] [--exchange dari.webhooks] [--count 20000] [--concurrency 64] [--json FILE]

struct WebhookLoadOptions {
    var url = "http://127.0.0.1:8080/webhooks/dari"
    var secret = ""
    var amqpURL = "amqp://guest:guest@127.0.0.1:5672/%2F"
    var exchange = "dari.webhooks"
    var count = 20_000
    var concurrency = 64
    var json: String? = nil
}

struct WebhookLoadResult: Codable {
    var webhooks: Int
    var concurrency: Int
    var seconds: Double
    var webhooksPerSecond: Double
    var statuses: [String: Int]
    var p50LatencyMs: Double
    var p99LatencyMs: Double
    var maxLatencyMs: Double
    var queued: UInt32
}

func webhookLoadMode(_ arguments: [String]) async -> Int32 {
    var o = WebhookLoadOptions()
    var args = arguments[...]
    while let a = args.popFirst() {
        let v = args.popFirst() ?? ""
        switch a {
        case "--url": o.url = v
        case "--secret": o.secret = v
        case "--amqp-url": o.amqpURL = v
        case "--exchange": o.exchange = v
        case "--count": o.count = Int(v) ?? o.count
        case "--concurrency": o.concurrency = Int(v) ?? o.concurrency
        case "--json": o.json = v
        default:
            FileHandle.standardError.write(Data("unknown option \(a)\n".utf8))
            return 2
        }
    }
    do {
        let r = try await runWebhookLoad(o)
        let text = String(decoding: try JSONEncoder().encode(r), as: UTF8.self)
        print(text)
        if let path = o.json { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) }
        return 0
    } catch {
        FileHandle.standardError.write(Data("webhooks: \(error)\n".utf8))
        return 1
    }
}

func runWebhookLoad(_ o: WebhookLoadOptions) async throws -> WebhookLoadResult {
    // A queue that takes every webhook, emptied before and counted after.
    let amqp = try await AMQPConnection.connect(to: try AMQPURL(parsing: o.amqpURL))
    try await amqp.declareExchange(o.exchange, type: "topic", durable: true)
    let queue = "bench.webhooks"
    try await amqp.declareQueue(queue, durable: true)
    try await amqp.bindQueue(queue, exchange: o.exchange, routingKey: "#")
    _ = try await amqp.deleteQueue(queue)
    try await amqp.declareQueue(queue, durable: true)
    try await amqp.bindQueue(queue, exchange: o.exchange, routingKey: "#")

    // Pre-signed, unique: every one is a new delivery.
    let ts = String(Int64(Date().timeIntervalSince1970))
    let requests: [(body: [UInt8], signature: String)] = (0..<o.count).map { i in
        let body = i % 2 == 0
            ? Array(#"{"variables":{"n":\#(i),"user":"u\#(i)"},"live_url":"https://app.usedari.com/l/\#(i)","resume_workflow_url":"https://api.usedari.com/public/send-user-signal/s\#(i)"}"#.utf8)
            : Array(#"{"variables":{"n":\#(i)},"live_url":"https://app.usedari.com/l/\#(i)"}"#.utf8)
        return (body, WebhookSignature.sign(timestamp: ts, body: body, secret: o.secret))
    }
    var configuration = HTTPClient.Configuration()
    configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: o.concurrency)
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    let state = LoadState()
    state.latencies.withLock { $0.reserveCapacity(o.count) }
    let start = ContinuousClock.now
    await withTaskGroup(of: Void.self) { group in
        for _ in 0..<o.concurrency {
            group.addTask {
                while true {
                    let i = state.next.add(1, ordering: .relaxed).oldValue
                    if i >= requests.count { return }
                    var request = HTTPClientRequest(url: o.url)
                    request.method = .POST
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.headers.add(name: "X-Webhook-Timestamp", value: ts)
                    request.headers.add(name: "X-Webhook-Signature", value: requests[i].signature)
                    request.body = .bytes(ByteBuffer(bytes: requests[i].body))
                    let sent = ContinuousClock.now
                    let status: String
                    do {
                        let response = try await client.execute(request, timeout: .seconds(30))
                        _ = try await response.body.collect(upTo: 1 << 16)
                        status = String(response.status.code)
                    } catch {
                        status = "error"
                    }
                    let ms = Double((ContinuousClock.now - sent).components.attoseconds) / 1e15 + Double((ContinuousClock.now - sent).components.seconds) * 1000
                    state.statuses.withLock { $0[status, default: 0] += 1 }
                    state.latencies.withLock { $0.append(ms) }
                }
            }
        }
    }
    let elapsed = ContinuousClock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    try? await client.shutdown()
    let queued = (try? await amqp.checkQueue(queue).messageCount) ?? 0
    _ = try? await amqp.deleteQueue(queue)
    await amqp.close()
    let sorted = state.latencies.withLock { $0.sorted() }
    func pct(_ p: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
    return WebhookLoadResult(webhooks: o.count, concurrency: o.concurrency, seconds: seconds, webhooksPerSecond: Double(o.count) / seconds,
                             statuses: state.statuses.withLock { $0 }, p50LatencyMs: pct(0.5), p99LatencyMs: pct(0.99), maxLatencyMs: sorted.last ?? 0,
                             queued: queued)
}

final class LoadState: Sendable {
    let next = Atomic<Int>(0)
    let statuses = Mutex<[String: Int]>([:])
    let latencies = Mutex<[Double]>([])
}
