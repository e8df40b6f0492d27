import DariBridge
import Foundation
import RabbitMQ

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
    /// The worker's utime + stime over the run divided by the messages, in µs. Closed
    /// loop: from its start (start-up included, see `workerStartupCPUms` of the
    /// report) to the last outcome; open loop: from the first publish to the last outcome.
    var workerCPUMicrosPerMessage: Double? = nil
    /// Percent of one core over the run: worker, broker, fakeDari, consumer, publisher
    /// (the pre-loading publisher has finished before a closed-loop run starts).
    var cpuPercent: [String: Double] = [:]
    /// Open loop: the rate asked for and the one the publisher achieved.
    var openLoopRate: Double? = nil
    var publishedRate: Double? = nil
    var p999LatencyMs: Double? = nil
    /// Open loop: latency - Dari's delay.
    var addedP50Ms: Double? = nil
    var addedP99Ms: Double? = nil
    var addedP999Ms: Double? = nil
    var addedMaxMs: Double? = nil
    /// The worker's context switches (all threads) over the run, per message.
    var workerContextSwitchesPerMessage: Double? = nil
}

func startWorker(_ o: Options, queue: String, exchange: String, dariPort: Int, concurrency: Int, wrapper: [String] = []) throws -> Process {
    let p = Process()
    if let tool = wrapper.first {
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = Array(wrapper.dropFirst()) + [o.worker, "run"]
    } else {
        p.executableURL = URL(fileURLWithPath: o.worker)
        p.arguments = ["run"]
    }
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

func stopWorker(_ p: Process, timeoutSeconds: Int = 30) async {
    kill(p.processIdentifier, SIGTERM)
    for _ in 0..<(timeoutSeconds * 20) where p.isRunning { try? await Task.sleep(for: .milliseconds(50)) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
}

/// Samples the worker's RSS every 100 ms until cancelled: (VmRSS samples kB, peak RssAnon kB).
func rssSampler(_ pid: Int32) -> Task<([Double], Double), Never> {
    Task {
        var rss: [Double] = [], anon = 0.0
        while !Task.isCancelled {
            if let r = procStatus(pid, "VmRSS") { rss.append(r) }
            anon = max(anon, procStatus(pid, "RssAnon") ?? 0)
            try? await Task.sleep(for: .milliseconds(100))
        }
        return (rss, anon)
    }
}

func tenths(_ samples: [Double]) -> [Double] {
    guard !samples.isEmpty else { return [] }
    return (1...10).map { samples[min(samples.count - 1, samples.count * $0 / 10 - ($0 == 10 ? 1 : 0))] / 1024 }
}

/// The --amqp-only consumer: the worker's AMQP cycle without HTTP, in this process.
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

func modeName(_ o: Options, delayMs: Int) -> String {
    o.amqpOnly ? (delayMs == 0 ? "amqp instant" : "amqp \(delayMs) ms") : (delayMs == 0 ? "instant" : "dari \(delayMs) ms")
}

/// Closed loop: `n` messages pre-loaded by the publisher process, then the
/// worker started; msg/s from its start to the last outcome.
func runMode(_ o: Options, delayMs: Int, concurrency: Int, count: Int? = nil, wrapper: [String] = []) async throws -> Result {
    let n = count ?? (delayMs == 0 ? o.messages : max(2_000, concurrency * o.roundsDelayed))
    let rig = try await Rig.start(o, delayMs: delayMs)
    let publisher = try rig.publisher(o, count: n)
    guard let done = await publisher.readLine(), done.hasPrefix("published") else { throw BenchError("publisher failed") }
    _ = await publisher.finish()
    let consumer = try await rig.consumer(o, count: n, delayMs: delayMs)

    let others: [String: Int32?] = ["broker": o.brokerPID, "fakeDari": rig.dari.pid, "consumer": consumer.pid]
    let before = CPUSample.take(others)
    let start = now()
    var worker: Process? = nil
    var amqpOnly: (AMQPConnection, Task<Void, Never>)? = nil
    if o.amqpOnly {
        amqpOnly = try await startAMQPOnly(o, queue: rig.queue, exchange: rig.exchange, concurrency: concurrency, delayMs: delayMs)
    } else {
        worker = try startWorker(o, queue: rig.queue, exchange: rig.exchange, dariPort: rig.dariPort, concurrency: concurrency, wrapper: wrapper)
    }
    let pid = worker?.processIdentifier ?? getpid()
    let workerBefore = o.amqpOnly ? (cpuTicks(pid) ?? 0) / clockTicksPerSecond : 0
    let switchesBefore = o.amqpOnly ? (contextSwitches(pid) ?? 0) : 0
    let sampler = rssSampler(pid)
    let report = try await Rig.report(of: consumer)
    var pids = others
    pids["worker"] = pid
    let after = CPUSample.take(pids)
    let switches = (contextSwitches(pid) ?? 0) - switchesBefore
    let peak = procStatus(pid, "VmHWM") ?? 0
    sampler.cancel()
    let (rss, anon) = await sampler.value
    if let worker { await stopWorker(worker, timeoutSeconds: wrapper.isEmpty ? 30 : 300) }
    if let (c, t) = amqpOnly { t.cancel(); await c.close() }
    _ = await consumer.finish()
    let posts = try await rig.tearDown()

    let seconds = Double(report.lastNs - start) / 1e9
    var shares = after.shares(since: before)
    shares["worker"] = ((after.seconds["worker"] ?? 0) - workerBefore) / (Double(after.at - start) / 1e9) * 100
    return Result(mode: modeName(o, delayMs: delayMs), dariDelayMs: delayMs, concurrency: concurrency,
                  messages: n, seconds: seconds, messagesPerSecond: Double(n) / seconds,
                  p50LatencyMs: report.p50Ms, p99LatencyMs: report.p99Ms, peakRSSMB: peak / 1024, peakAnonMB: anon / 1024,
                  rssMBByTenth: tenths(rss),
                  ideal: delayMs == 0 ? nil : Double(concurrency) / (Double(delayMs) / 1000), dariRequests: posts,
                  firstOutcomeMs: Double(Int64(report.firstNs) - Int64(start)) / 1e6,
                  workerCPUMicrosPerMessage: ((after.seconds["worker"] ?? 0) - workerBefore) / Double(n) * 1e6,
                  cpuPercent: shares, p999LatencyMs: report.p999Ms,
                  workerContextSwitchesPerMessage: switches / Double(n))
}

/// Open loop: the worker started and consuming first; then the publisher
/// process publishes at `rate` msg/s for `o.openLoopSeconds`. The latency the
/// worker adds is latency - Dari's delay.
func runOpenLoop(_ o: Options, rate: Double, label: String) async throws -> Result {
    let delayMs = o.openLoopDelayMs, concurrency = o.openLoopConcurrency
    let n = max(1, Int(rate * Double(o.openLoopSeconds)))
    let rig = try await Rig.start(o, delayMs: delayMs)
    let consumer = try await rig.consumer(o, count: n, delayMs: delayMs)
    let worker = try startWorker(o, queue: rig.queue, exchange: rig.exchange, dariPort: rig.dariPort, concurrency: concurrency)
    let pid = worker.processIdentifier
    // Consuming: the queue has a consumer; then a second to settle.
    for _ in 0..<200 {
        if let c = try? await rig.conn.checkQueue(rig.queue), c.consumerCount > 0 { break }
        try await Task.sleep(for: .milliseconds(50))
    }
    try await Task.sleep(for: .seconds(1))
    let publisher = try rig.publisher(o, count: n, rate: rate)
    var pids: [String: Int32?] = ["worker": pid, "broker": o.brokerPID, "fakeDari": rig.dari.pid, "consumer": consumer.pid]
    pids["publisher"] = publisher.pid
    let before = CPUSample.take(pids)
    let switchesBefore = contextSwitches(pid) ?? 0
    let sampler = rssSampler(pid)
    let report = try await Rig.report(of: consumer)
    let after = CPUSample.take(pids)
    let switches = (contextSwitches(pid) ?? 0) - switchesBefore
    let peak = procStatus(pid, "VmHWM") ?? 0
    sampler.cancel()
    let (rss, anon) = await sampler.value
    let pubLines = await publisher.finish()
    let published = pubLines.first { $0.hasPrefix("published ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    await stopWorker(worker)
    _ = await consumer.finish()
    let posts = try await rig.tearDown()
    let seconds = Double(report.lastNs - before.at) / 1e9
    return Result(mode: "open \(label)", dariDelayMs: delayMs, concurrency: concurrency, messages: n, seconds: seconds,
                  messagesPerSecond: Double(n) / seconds, p50LatencyMs: report.p50Ms, p99LatencyMs: report.p99Ms,
                  peakRSSMB: peak / 1024, peakAnonMB: anon / 1024, rssMBByTenth: tenths(rss),
                  ideal: Double(concurrency) / (Double(delayMs) / 1000), dariRequests: posts,
                  firstOutcomeMs: Double(Int64(report.firstNs) - Int64(before.at)) / 1e6,
                  workerCPUMicrosPerMessage: ((after.seconds["worker"] ?? 0) - (before.seconds["worker"] ?? 0)) / Double(n) * 1e6,
                  cpuPercent: after.shares(since: before), openLoopRate: rate,
                  publishedRate: published.map { Double(n) / $0 }, p999LatencyMs: report.p999Ms,
                  addedP50Ms: report.addedP50Ms, addedP99Ms: report.addedP99Ms, addedP999Ms: report.addedP999Ms,
                  addedMaxMs: report.addedMaxMs, workerContextSwitchesPerMessage: switches / Double(n))
}

/// A connected, idle worker: (percent of one core, CPU ms it used to start and connect).
func idleCPU(_ o: Options) async throws -> (Double, Double) {
    let rig = try await Rig.start(o, delayMs: 0)
    let worker = try startWorker(o, queue: rig.queue, exchange: rig.exchange, dariPort: rig.dariPort, concurrency: 64)
    try await Task.sleep(for: .seconds(3))  // connected and settled
    let t0 = cpuTicks(worker.processIdentifier) ?? 0
    try await Task.sleep(for: .seconds(o.idleSeconds))
    let t1 = cpuTicks(worker.processIdentifier) ?? 0
    await stopWorker(worker)
    _ = try await rig.tearDown()
    return ((t1 - t0) / clockTicksPerSecond / Double(o.idleSeconds) * 100, t0 / clockTicksPerSecond * 1000)
}
