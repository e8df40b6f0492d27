import DariBridge
import FakeDari
import Foundation
import RabbitMQ
import Synchronization

// The benchmark: pre-loads N resume requests, runs the release-built worker
// as a separate process against a FakeDari on loopback, and reports
// messages/s (worker start to last outcome), p50/p99 publish-to-outcome
// latency and the worker's peak RSS (VmHWM). Not a test: nothing asserts.
//
//   dari-bridge-bench [--amqp-url URL] [--worker PATH] [--messages N] [--rounds-delayed R]
//                     [--concurrency 16,64,256] [--delays-ms 0,100] [--json FILE] [--idle-seconds S]
//                     [--amqp-only] [--oversized]
//
// --amqp-only measures the broker without the worker: an in-process consumer on
// our AMQP client (prefetch = concurrency) waits the Dari delay instead of
// POSTing, then publishes a fixed outcome with a confirm and acks. Like the
// issue's C baseline, it is the ceiling the broker leaves on this machine.

struct Options {
    var amqpURL = "amqp://guest:guest@127.0.0.1:5672/%2F"
    var worker = ".build/release/dari-bridge"
    var messages = 20_000
    /// With a delayed Dari: this many rounds of the concurrency window (at least 2,000 messages).
    var roundsDelayed = 60
    var concurrency = [16, 64, 256]
    var delaysMs = [0, 100]
    var json = "bench-results/latest.json"
    var idleSeconds = 30
    var amqpOnly = false
    var oversized = false
}

func parseOptions() -> Options {
    var o = Options()
    var args = Array(CommandLine.arguments.dropFirst())[...]
    func ints(_ s: String) -> [Int] { s.split(separator: ",").compactMap { Int($0) } }
    while let a = args.popFirst() {
        if a == "--amqp-only" { o.amqpOnly = true; continue }
        if a == "--oversized" { o.oversized = true; continue }
        let v = args.popFirst() ?? ""
        switch a {
        case "--amqp-url": o.amqpURL = v
        case "--worker": o.worker = v
        case "--messages": o.messages = Int(v) ?? o.messages
        case "--rounds-delayed": o.roundsDelayed = Int(v) ?? o.roundsDelayed
        case "--concurrency": o.concurrency = ints(v)
        case "--delays-ms": o.delaysMs = ints(v)
        case "--json": o.json = v
        case "--idle-seconds": o.idleSeconds = Int(v) ?? o.idleSeconds
        default:
            FileHandle.standardError.write(Data("unknown option \(a)\n".utf8))
            exit(2)
        }
    }
    return o
}

struct Result: Codable {
    var mode: String
    var dariDelayMs: Int
    var concurrency: Int
    var messages: Int
    var seconds: Double
    var messagesPerSecond: Double
    var p50LatencyMs: Double
    var p99LatencyMs: Double
    var peakRSSMB: Double
    /// Private (anonymous) part of the RSS at its peak; the rest is file-backed code pages.
    var peakAnonMB: Double
    /// VmRSS at each tenth of the run: flat means no growth.
    var rssMBByTenth: [Double]
    var ideal: Double?
    var dariRequests: Int
    /// Worker start to the first outcome: process start, connection, first POST (part of `seconds`).
    var firstOutcomeMs: Double
}

final class Stamps: Sendable {
    let times: Mutex<[UInt64]>
    init(count: Int) { times = Mutex(Array(repeating: 0, count: count)) }
}

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func procStatus(_ pid: Int32, _ key: String) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
        return Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
    return nil
}

func cpuTicks(_ pid: Int32) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return nil }
    return u + s
}

func startWorker(_ o: Options, queue: String, exchange: String, dariPort: Int, concurrency: Int) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: o.worker)
    p.arguments = ["run"]
    var env = ProcessInfo.processInfo.environment
    env["AMQP_URL"] = o.amqpURL
    env["DARI_BRIDGE_QUEUE"] = queue
    env["DARI_BRIDGE_RESULTS_EXCHANGE"] = exchange
    env["DARI_BRIDGE_ALLOWED_HOSTS"] = "127.0.0.1:\(dariPort)"
    env["DARI_BRIDGE_ALLOW_INSECURE_HTTP"] = "true"
    env["DARI_BRIDGE_CONCURRENCY"] = "\(concurrency)"
    env["DARI_BRIDGE_HTTP_PORT"] = "0"
    env["DARI_BRIDGE_LOG_LEVEL"] = "warning"
    p.environment = env
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    return p
}

/// The --amqp-only consumer: the worker's AMQP cycle without HTTP.
func startAMQPOnly(_ o: Options, queue: String, exchange: String, concurrency: Int, delayMs: Int) async throws -> (AMQPConnection, Task<Void, Never>) {
    let conn = try await AMQPConnection.connect(to: try AMQPURL(parsing: o.amqpURL))
    try await conn.qos(prefetchCount: UInt16(concurrency))
    let consumer = try await conn.consume(queue: queue)
    let task = Task {
        await withDiscardingTaskGroup { group in
            do {
                for try await d in consumer.deliveries {
                    group.addTask {
                        if delayMs > 0 { try? await Task.sleep(for: .milliseconds(delayMs)) }
                        let id = d.properties.messageId ?? ""
                        let body = Array(#"{"status":"succeeded","message_id":"\#(id)","attempts":1,"http_status":200,"response":{"ok":true}}"#.utf8)
                        do {
                            try await conn.publish(exchange: exchange, routingKey: "resume.succeeded", body: body,
                                                   properties: AMQPProperties(contentType: "application/json", messageId: id, persistent: true))
                            try conn.ack(deliveryTag: d.deliveryTag)
                        } catch {
                            FileHandle.standardError.write(Data("amqp-only: \(error)\n".utf8))
                        }
                    }
                }
            } catch {}
        }
    }
    return (conn, task)
}

func stopWorker(_ p: Process) async {
    kill(p.processIdentifier, SIGTERM)
    for _ in 0..<600 where p.isRunning { try? await Task.sleep(for: .milliseconds(50)) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
}

func runMode(_ o: Options, delayMs: Int, concurrency: Int) async throws -> Result {
    let n = delayMs == 0 ? o.messages : max(2_000, concurrency * o.roundsDelayed)
    let dari = try await FakeDari.start(defaultReply: FakeDari.Reply(status: 200, body: #"{"ok":true}"#, delay: .milliseconds(delayMs)), record: false, eventLoopThreads: 2)
    let url = try AMQPURL(parsing: o.amqpURL)
    let suffix = UUID().uuidString.prefix(8)
    let queue = "bench.requests.\(suffix)", exchange = "bench.results.\(suffix)"
    let conn = try await AMQPConnection.connect(to: url)
    try await conn.declareQueue(queue, durable: true)
    try await conn.declareExchange(exchange, type: "topic", durable: true)
    let results = try await conn.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
    try await conn.bindQueue(results, exchange: exchange, routingKey: "#")
    try await conn.qos(prefetchCount: 2000)

    // Pre-load, recording each message's publish time.
    let publishedAt = Stamps(count: n)
    let publisher = try await AMQPConnection.connect(to: url)
    let variables = Array(#"{"user_response":"approved","amount":12.5,"ok":true}"#.utf8)
    var i = 0
    while i < n {
        let batch = i..<min(n, i + 1000)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for j in batch {
                let body = ResumeRequest.messageBody(resumeURL: "http://127.0.0.1:\(dari.port)/public/send-user-signal/s\(j)", variablesJSON: variables)
                group.addTask {
                    publishedAt.times.withLock { $0[j] = now() }
                    try await publisher.publish(exchange: "", routingKey: queue, body: body,
                                                properties: AMQPProperties(contentType: "application/json", messageId: "\(j)", persistent: true))
                }
            }
            try await group.waitForAll()
        }
        i = batch.upperBound
    }
    await publisher.close()

    let consumer = try await conn.consume(queue: results)
    let start = now()
    var worker: Process? = nil
    var amqpOnly: (AMQPConnection, Task<Void, Never>)? = nil
    if o.amqpOnly {
        amqpOnly = try await startAMQPOnly(o, queue: queue, exchange: exchange, concurrency: concurrency, delayMs: delayMs)
    } else {
        worker = try startWorker(o, queue: queue, exchange: exchange, dariPort: dari.port, concurrency: concurrency)
    }
    let pid = worker?.processIdentifier ?? getpid()
    var latencies: [Double] = []
    latencies.reserveCapacity(n)
    var seen = Set<Int>()
    var last = start
    var first: UInt64? = nil
    var peak = 0.0
    var peakAnon = 0.0
    var byTenth: [Double] = []
    for try await d in consumer.deliveries {
        let t = now()
        if d.deliveryTag % 500 == 0 {
            try conn.ack(deliveryTag: d.deliveryTag, multiple: true)
            peak = max(peak, procStatus(pid, "VmHWM") ?? 0)
            peakAnon = max(peakAnon, procStatus(pid, "RssAnon") ?? 0)
        }
        // The outcome's message_id is the input's (in the JSON body).
        if let r = d.body.firstRange(of: Array(#""message_id":""#.utf8)),
           let endQuote = d.body[r.upperBound...].firstIndex(of: UInt8(ascii: "\"")),
           let id = Int(String(decoding: d.body[r.upperBound..<endQuote], as: UTF8.self)),
           seen.insert(id).inserted {
            latencies.append(Double(t - publishedAt.times.withLock { $0[id] }) / 1e6)
            last = t
            if first == nil { first = t }
            if seen.count % max(1, n / 10) == 0 && byTenth.count < 10 {
                byTenth.append((procStatus(pid, "VmRSS") ?? 0) / 1024)
            }
        }
        if seen.count == n { break }
    }
    peak = max(peak, procStatus(pid, "VmHWM") ?? 0)
    if let worker { await stopWorker(worker) }
    if let (c, t) = amqpOnly { t.cancel(); await c.close() }
    try await conn.deleteQueue(queue)
    await conn.close()
    let posts = dari.requestCount
    try await dari.shutdown()
    latencies.sort()
    let seconds = Double(last - start) / 1e9
    func pct(_ p: Double) -> Double { latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
    return Result(mode: o.amqpOnly ? (delayMs == 0 ? "amqp instant" : "amqp \(delayMs) ms") : (delayMs == 0 ? "instant" : "dari \(delayMs) ms"), dariDelayMs: delayMs, concurrency: concurrency,
                  messages: n, seconds: seconds, messagesPerSecond: Double(n) / seconds,
                  p50LatencyMs: pct(0.5), p99LatencyMs: pct(0.99), peakRSSMB: peak / 1024, peakAnonMB: peakAnon / 1024,
                  rssMBByTenth: byTenth,
                  ideal: delayMs == 0 ? nil : Double(concurrency) / (Double(delayMs) / 1000), dariRequests: posts,
                  firstOutcomeMs: Double((first ?? last) - start) / 1e6)
}

func idleCPU(_ o: Options) async throws -> Double {
    let dari = try await FakeDari.start(record: false)
    let suffix = UUID().uuidString.prefix(8)
    let worker = try startWorker(o, queue: "bench.idle.\(suffix)", exchange: "bench.idle.results.\(suffix)", dariPort: dari.port, concurrency: 64)
    try await Task.sleep(for: .seconds(3))  // connected and settled
    let t0 = cpuTicks(worker.processIdentifier) ?? 0
    try await Task.sleep(for: .seconds(o.idleSeconds))
    let t1 = cpuTicks(worker.processIdentifier) ?? 0
    await stopWorker(worker)
    let conn = try await AMQPConnection.connect(to: try AMQPURL(parsing: o.amqpURL))
    try await conn.deleteQueue("bench.idle.\(suffix)")
    await conn.close()
    try await dari.shutdown()
    let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
    return (t1 - t0) / hz / Double(o.idleSeconds) * 100
}

let options = parseOptions()
if options.oversized { exit(try await oversizedMode(options)) }
var results: [Result] = []
func col(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }
print(["mode".padding(toLength: 12, withPad: " ", startingAt: 0), col("conc", 5), col("msgs", 7), col("msg/s", 8), col("ideal", 7),
       col("p50 ms", 9), col("p99 ms", 9), col("RSS MB", 7), col("anon MB", 7), col("POSTs", 7), col("1st ms", 7)].joined(separator: " "))
for delay in options.delaysMs {
    for c in options.concurrency {
        let r = try await runMode(options, delayMs: delay, concurrency: c)
        results.append(r)
        print([r.mode.padding(toLength: 12, withPad: " ", startingAt: 0), col("\(r.concurrency)", 5), col("\(r.messages)", 7),
               col(String(format: "%.0f", r.messagesPerSecond), 8), col(r.ideal.map { String(format: "%.0f", $0) } ?? "-", 7),
               col(String(format: "%.1f", r.p50LatencyMs), 9), col(String(format: "%.1f", r.p99LatencyMs), 9),
               col(String(format: "%.1f", r.peakRSSMB), 7), col(String(format: "%.1f", r.peakAnonMB), 7), col("\(r.dariRequests)", 7), col(String(format: "%.0f", r.firstOutcomeMs), 7)].joined(separator: " "))
    }
}
var idle: Double? = nil
if options.idleSeconds > 0 && !options.amqpOnly {
    idle = try await idleCPU(options)
    print(String(format: "idle, connected: %.3f %% of one core over %d s", idle!, options.idleSeconds))
}
struct Report: Codable {
    var machine: String
    var cores: Int
    var results: [Result]
    var idleCPUPercent: Double?
}
let machine = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n").first { $0.hasPrefix("model name") }
    .map { String($0.split(separator: ":").last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown"
let report = Report(machine: machine, cores: ProcessInfo.processInfo.activeProcessorCount, results: results, idleCPUPercent: idle)
let encoder = JSONEncoder()
encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
try FileManager.default.createDirectory(atPath: (options.json as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
try encoder.encode(report).write(to: URL(fileURLWithPath: options.json))
print("wrote \(options.json) (\(machine), \(report.cores) cores)")
