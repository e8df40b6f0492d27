import Foundation

// Command line of dari-bridge-bench (the orchestrator). The roles it starts as
// processes of their own (fake-dari, publish, consume) parse their own
// arguments (Roles.swift).

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
    /// The broker's OS process (beam.smp), for its CPU share; scripts/bench.sh finds it.
    var brokerPID: Int32? = nil
    /// Event-loop threads of the fake Dari process.
    var dariThreads = 1
    /// Open loop: rates in msg/s; "N%" is that share of the capacity measured in
    /// the closed-loop mode with the same Dari delay and concurrency (else of the ideal).
    var openLoopRates: [String] = ["1000", "80%"]
    var openLoopConcurrency = 256
    var openLoopDelayMs = 100
    var openLoopSeconds = 10
    /// Callgrind mode: instructions per message of the worker (--worker should be a
    /// `strip --strip-debug` copy); runs `base` then `messages`, instant Dari.
    var callgrindDir: String? = nil
    var callgrindBase = 500
    var callgrindMessages = 2_500
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
        case "--broker-pid": o.brokerPID = Int32(v)
        case "--dari-threads": o.dariThreads = max(1, Int(v) ?? o.dariThreads)
        case "--open-loop-rates": o.openLoopRates = v.split(separator: ",").map(String.init).filter { $0 != "none" }
        case "--open-loop-concurrency": o.openLoopConcurrency = Int(v) ?? o.openLoopConcurrency
        case "--open-loop-delay-ms": o.openLoopDelayMs = Int(v) ?? o.openLoopDelayMs
        case "--open-loop-seconds": o.openLoopSeconds = Int(v) ?? o.openLoopSeconds
        case "--callgrind": o.callgrindDir = v
        case "--callgrind-base": o.callgrindBase = Int(v) ?? o.callgrindBase
        case "--callgrind-messages": o.callgrindMessages = Int(v) ?? o.callgrindMessages
        default:
            FileHandle.standardError.write(Data("unknown option \(a)\n".utf8))
            exit(2)
        }
    }
    return o
}
