import Foundation
import TestSupport

/// The built `dari-bridge` executable run as a child process (scripts/test.sh
/// builds it before the tests), for what only a real process shows: signals,
/// exit codes, a crash.
final class WorkerProcess: @unchecked Sendable {
    let process: SpawnedProcess
    let logURL: URL

    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["DARI_TEST_BINARY"] { return URL(fileURLWithPath: path) }
        // Tests/IntegrationTests/WorkerProcess.swift -> package root
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/dari-bridge")
    }

    init(arguments: [String] = ["run"], environment: [String: String]) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary.path) else {
            throw HarnessError("\(Self.binary.path) is missing: run `swift build` first (scripts/test.sh does)")
        }
        logURL = FileManager.default.temporaryDirectory.appendingPathComponent("dari-bridge-\(UUID().uuidString.prefix(8)).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process = try SpawnedProcess(executable: Self.binary.path, arguments: arguments, environment: env, outputPath: logURL.path)
    }

    var pid: Int32 { process.processIdentifier }
    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// Sends `sig`. SIGTERM and SIGINT wait (up to 30 s) until the process handles them: a
    /// worker signalled before its service group set up its signal handling dies of the
    /// default action (status 15), which is not what a test of the shutdown means to see.
    func signal(_ sig: Int32) {
        if sig == SIGTERM || sig == SIGINT {
            let deadline = ContinuousClock.now + .seconds(30)
            while process.isRunning && !handles(sig) && ContinuousClock.now < deadline {
                usleep(20_000)
            }
        }
        kill(pid, sig)
    }

    /// Whether the process catches or ignores `sig` (SigCgt / SigIgn of /proc/<pid>/status;
    /// swift-service-lifecycle's dispatch signal sources set the signal to ignored).
    func handles(_ sig: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        let bit = UInt64(1) << UInt64(sig - 1)
        for line in status.split(separator: "\n") where line.hasPrefix("SigCgt:") || line.hasPrefix("SigIgn:") {
            if let mask = UInt64(line.split(separator: "\t").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "", radix: 16),
               mask & bit != 0 {
                return true
            }
        }
        return false
    }

    /// Waits for the exit; nil if it did not exit in time (then it is killed).
    func waitForExit(timeout: Duration) async -> Int32? {
        await process.waitForExit(timeout: timeout)
    }

    static func environment(for h: Harness, extra: [String: String] = [:]) -> [String: String] {
        var env = [
            "AMQP_URL": "\(h.config.amqpURL.tls ? "amqps" : "amqp")://\(h.config.amqpURL.user):\(h.config.amqpURL.password)@\(h.config.amqpURL.host):\(h.config.amqpURL.port)/%2F",
            "DARI_BRIDGE_QUEUE": h.config.queue,
            "DARI_BRIDGE_RESULTS_EXCHANGE": h.config.resultsExchange,
            "DARI_BRIDGE_ALLOWED_HOSTS": h.config.allowedHosts.joined(separator: ","),
            "DARI_BRIDGE_ALLOW_INSECURE_HTTP": "true",
            "DARI_BRIDGE_HTTP_PORT": "0",
            "DARI_BRIDGE_INITIAL_BACKOFF_MS": "10",
            "DARI_BRIDGE_MAX_BACKOFF_MS": "50",
            "DARI_BRIDGE_RECONNECT_INITIAL_MS": "200",
            "DARI_BRIDGE_RECONNECT_MAX_MS": "1000",
            "DARI_BRIDGE_LOG_LEVEL": "info",
        ]
        for (k, v) in extra { env[k] = v }
        return env
    }
}
