import Foundation

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the benchmark
/// (publish stamps travel in message ids and are compared in another process).
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func now() -> UInt64 { monotonicNanos() }

/// A field of /proc/<pid>/status in kB (VmHWM, VmRSS, RssAnon).
func procStatus(_ pid: Int32, _ key: String) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
        return Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
    return nil
}

/// utime + stime of a process (all its threads) in clock ticks.
func cpuTicks(_ pid: Int32) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let u = Double(fields[11]), let s = Double(fields[12]) else { return nil }
    return u + s
}

/// Context switches (voluntary + involuntary) of every live thread of a process:
/// each is a thread going to sleep or being woken, the cost callgrind cannot see.
func contextSwitches(_ pid: Int32) -> Double? {
    guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return nil }
    var total = 0.0
    for t in tasks {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(t)/status", encoding: .utf8) else { continue }
        for line in text.split(separator: "\n") where line.hasPrefix("voluntary_ctxt_switches:") || line.hasPrefix("nonvoluntary_ctxt_switches:") {
            total += Double(line.split(separator: "\t").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
        }
    }
    return total
}

let clockTicksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

/// CPU seconds of several processes at one moment (nil for a process not running).
struct CPUSample {
    var at: UInt64
    var seconds: [String: Double]

    static func take(_ pids: [String: Int32?]) -> CPUSample {
        var s: [String: Double] = [:]
        for (name, pid) in pids {
            if let pid, let t = cpuTicks(pid) { s[name] = t / clockTicksPerSecond }
        }
        return CPUSample(at: monotonicNanos(), seconds: s)
    }

    /// Percent of one core each process used between `earlier` and this sample.
    func shares(since earlier: CPUSample) -> [String: Double] {
        let wall = Double(at - earlier.at) / 1e9
        guard wall > 0 else { return [:] }
        var out: [String: Double] = [:]
        for (name, t) in seconds {
            out[name] = (t - (earlier.seconds[name] ?? 0)) / wall * 100
        }
        return out
    }
}

/// The path of this executable, to start its roles as processes of their own.
func selfExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}
