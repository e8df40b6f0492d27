import Foundation

// `dari-bridge-bench --callgrind DIR`: instructions per message of the worker.
// Runs the closed-loop instant-Dari mode at the first --concurrency (64 from
// scripts/callgrind.sh) twice, with --callgrind-base and --callgrind-messages
// pre-loaded messages, the worker (--worker: a `strip --strip-debug` copy)
// under `valgrind --tool=callgrind`, and reports
// (Ir(messages) - Ir(base)) / (messages - base): start-up, connection and
// shutdown cancel out. The profiles stay in DIR for callgrind_annotate.

struct CallgrindResult: Codable {
    var concurrency: Int
    var baseMessages: Int
    var messages: Int
    var baseIr: UInt64
    var ir: UInt64
    var irPerMessage: Double
    var baseProfile: String
    var profile: String
}

func callgrindTotal(_ path: String) -> UInt64? {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
    var summary: UInt64? = nil
    for line in text.split(separator: "\n") {
        if line.hasPrefix("totals:") { return UInt64(line.dropFirst(7).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") }
        if line.hasPrefix("summary:") { summary = UInt64(line.dropFirst(8).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") }
    }
    return summary
}

func callgrindMode(_ o: Options, dir: String) async throws -> Int32 {
    let concurrency = o.concurrency.first ?? 64
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    var totals: [UInt64] = []
    var files: [String] = []
    for count in [o.callgrindBase, o.callgrindMessages] {
        let file = "\(dir)/callgrind.\(count).out"
        try? FileManager.default.removeItem(atPath: file)
        let wrapper = ["/usr/bin/valgrind", "--tool=callgrind", "--callgrind-out-file=\(file)", "--quiet"]
        let r = try await runMode(o, delayMs: 0, concurrency: concurrency, count: count, wrapper: wrapper)
        guard let total = callgrindTotal(file) else { throw BenchError("no callgrind totals in \(file)") }
        print(String(format: "%6d messages: %14llu Ir (%.0f msg/s under callgrind, %d POSTs)", count, total, r.messagesPerSecond, r.dariRequests))
        totals.append(total)
        files.append(file)
    }
    let perMessage = Double(Int64(totals[1]) - Int64(totals[0])) / Double(o.callgrindMessages - o.callgrindBase)
    print(String(format: "instructions per message: %.0f  ((Ir(%d) - Ir(%d)) / %d, concurrency %d, instant Dari)",
                 perMessage, o.callgrindMessages, o.callgrindBase, o.callgrindMessages - o.callgrindBase, concurrency))
    let result = CallgrindResult(concurrency: concurrency, baseMessages: o.callgrindBase, messages: o.callgrindMessages,
                                 baseIr: totals[0], ir: totals[1], irPerMessage: perMessage, baseProfile: files[0], profile: files[1])
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try FileManager.default.createDirectory(atPath: (o.json as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try encoder.encode(result).write(to: URL(fileURLWithPath: o.json))
    print("wrote \(o.json)")
    return 0
}
