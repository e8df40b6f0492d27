import Foundation

// The benchmark, measured the way a deployment runs: the release worker, the
// fake Dari, the outcome consumer and the publisher are processes of their own
// (the last three are this executable in a role, Roles.swift). Reports per
// mode msg/s, the worker's CPU µs per message (utime + stime from /proc), p50/p99
// latency, peak RSS (VmHWM) and each process's share of a core; an open-loop
// mode (fixed publish rate) reports the latency the worker adds. Not a test:
// nothing asserts.
//
//   dari-bridge-bench [--amqp-url URL] [--worker PATH] [--messages N] [--rounds-delayed R]
//                     [--concurrency 16,64,256] [--delays-ms 0,100] [--json FILE] [--idle-seconds S]
//                     [--broker-pid PID] [--dari-threads T]
//                     [--open-loop-rates 1000,80%|none] [--open-loop-concurrency C]
//                     [--open-loop-delay-ms D] [--open-loop-seconds S]
//                     [--amqp-only] [--oversized] [--callgrind DIR [--callgrind-base B] [--callgrind-messages N]]
//
// --amqp-only measures the broker without the worker: an in-process consumer on
// our AMQP client (prefetch = concurrency) waits the Dari delay instead of
// POSTing, then publishes a fixed outcome with a confirm and acks.

switch CommandLine.arguments.dropFirst().first {
case "fake-dari": try await runFakeDariRole(); exit(0)
case "publish": try await runPublishRole(); exit(0)
case "consume": try await runConsumeRole(); exit(0)
default: break
}

if CommandLine.arguments.dropFirst().first == "webhooks" { exit(await webhookLoadMode(Array(CommandLine.arguments.dropFirst(2)))) }  // WebhookLoad.swift
let options = parseOptions()
if options.oversized { exit(try await oversizedMode(options)) }
if let dir = options.callgrindDir { exit(try await callgrindMode(options, dir: dir)) }

func col(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }
func f(_ v: Double?, _ format: String = "%.1f") -> String { v.map { String(format: format, $0) } ?? "-" }
let shareNames = ["worker", "broker", "fakeDari", "consumer", "publisher"]
print(["mode".padding(toLength: 14, withPad: " ", startingAt: 0), col("conc", 5), col("msgs", 6), col("msg/s", 6), col("ideal", 6),
       col("µs/msg", 7), col("cs/msg", 6), col("p50 ms", 8), col("p99 ms", 8), col("p99.9", 7), col("+p50", 6), col("+p99", 6), col("+p99.9", 6),
       col("RSS MB", 6), col("anon", 5), "| CPU % worker broker dari consumer publisher"].joined(separator: " "))
func printRow(_ r: Result) {
    print([r.mode.padding(toLength: 14, withPad: " ", startingAt: 0), col("\(r.concurrency)", 5), col("\(r.messages)", 6),
           col(f(r.messagesPerSecond, "%.0f"), 6), col(f(r.ideal, "%.0f"), 6), col(f(r.workerCPUMicrosPerMessage), 7), col(f(r.workerContextSwitchesPerMessage), 6),
           col(f(r.p50LatencyMs), 8), col(f(r.p99LatencyMs), 8), col(f(r.p999LatencyMs), 7),
           col(f(r.addedP50Ms, "%.2f"), 6), col(f(r.addedP99Ms, "%.2f"), 6), col(f(r.addedP999Ms, "%.2f"), 6),
           col(f(r.peakRSSMB), 6), col(f(r.peakAnonMB), 5), "|       " + shareNames.map { col(f(r.cpuPercent[$0], "%.0f"), $0 == "worker" ? 6 : ($0 == "fakeDari" ? 4 : $0.count)) }.joined(separator: " ")]
        .joined(separator: " "))
}
var results: [Result] = []
for delay in options.delaysMs {
    for c in options.concurrency {
        let r = try await runMode(options, delayMs: delay, concurrency: c)
        results.append(r)
        printRow(r)
    }
}
if !options.amqpOnly {
    for spec in options.openLoopRates {
        var rate: Double
        let label: String
        if spec.hasSuffix("%"), let pct = Double(spec.dropLast()) {
            let measured = results.first { $0.dariDelayMs == options.openLoopDelayMs && $0.concurrency == options.openLoopConcurrency && $0.openLoopRate == nil }
            let capacity = measured?.messagesPerSecond ?? Double(options.openLoopConcurrency) / (Double(options.openLoopDelayMs) / 1000)
            rate = (capacity * pct / 100).rounded()
            label = "\(spec) \(Int(rate))/s"
        } else {
            rate = Double(spec) ?? 1000
            label = "\(Int(rate))/s"
        }
        rate = max(1, rate)
        let r = try await runOpenLoop(options, rate: rate, label: label)
        results.append(r)
        printRow(r)
    }
}
var idle: Double? = nil
var startup: Double? = nil
if options.idleSeconds > 0 && !options.amqpOnly {
    let (i, s) = try await idleCPU(options)
    idle = i
    startup = s
    let tick = 1000 / clockTicksPerSecond
    print(String(format: "idle, connected: %.3f %% of one core over %d s; start-up and connect: ", i, options.idleSeconds)
          + (s < tick ? String(format: "under %.0f ms CPU (one clock tick)", tick) : String(format: "%.0f ms CPU", s)))
}
struct Report: Codable {
    var machine: String
    var cores: Int
    var results: [Result]
    var idleCPUPercent: Double?
    /// CPU the worker spends to start and connect (inside the closed-loop µs/msg).
    var workerStartupCPUms: Double?
}
let machine = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n").first { $0.hasPrefix("model name") }
    .map { String($0.split(separator: ":").last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown"
let report = Report(machine: machine, cores: ProcessInfo.processInfo.activeProcessorCount, results: results, idleCPUPercent: idle, workerStartupCPUms: startup)
let encoder = JSONEncoder()
encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
try FileManager.default.createDirectory(atPath: (options.json as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
try encoder.encode(report).write(to: URL(fileURLWithPath: options.json))
print("wrote \(options.json) (\(machine), \(report.cores) cores)")
