import Foundation
import Synchronization

/// A process of the benchmark (this executable in one of its roles, or the
/// worker): its stdout is read line by line on a thread of its own (a blocking
/// read never holds a thread of Swift's cooperative pool), and closing its stdin
/// tells a role to finish.
final class Child: Sendable {
    let process: Process
    private let input: Pipe
    private let output: Pipe
    private let buffer = Mutex<[UInt8]>([])

    var pid: Int32 { process.processIdentifier }

    /// Starts this executable with `arguments` (a role and its options).
    convenience init(role arguments: [String]) throws {
        try self.init(executable: selfExecutable(), arguments: arguments)
    }

    init(executable: String, arguments: [String], environment: [String: String]? = nil, captureOutput: Bool = true) throws {
        process = Process()
        input = Pipe()
        output = Pipe()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardInput = input
        process.standardOutput = captureOutput ? output : FileHandle.nullDevice
        try process.run()
    }

    /// The next line of the child's stdout, nil at its end.
    func readLine() async -> String? {
        await withCheckedContinuation { (c: CheckedContinuation<String?, Never>) in
            Thread.detachNewThread { c.resume(returning: self.blockingReadLine()) }
        }
    }

    private func blockingReadLine() -> String? {
        let fd = output.fileHandleForReading.fileDescriptor
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let line: String? = buffer.withLock { b in
                guard let nl = b.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
                let l = String(decoding: b[..<nl], as: UTF8.self)
                b.removeSubrange(...nl)
                return l
            }
            if let line { return line }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, 4096) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                return buffer.withLock { b in
                    if b.isEmpty { return nil }
                    defer { b = [] }
                    return String(decoding: b, as: UTF8.self)
                }
            }
            buffer.withLock { $0.append(contentsOf: chunk[..<n]) }
        }
    }

    /// Closes the child's stdin (a role then reports and exits), reads what is
    /// left of its stdout and waits for it to exit.
    func finish() async -> [String] {
        try? input.fileHandleForWriting.close()
        var lines: [String] = []
        while let l = await readLine() { lines.append(l) }
        await waitForExit()
        return lines
    }

    func waitForExit(timeoutSeconds: Double = 60) async {
        let deadline = monotonicNanos() + UInt64(timeoutSeconds * 1e9)
        while process.isRunning && monotonicNanos() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { kill(pid, SIGKILL) }
    }

    /// SIGTERM, then SIGKILL after `timeoutSeconds`.
    func terminate(timeoutSeconds: Double = 30) async {
        kill(pid, SIGTERM)
        await waitForExit(timeoutSeconds: timeoutSeconds)
        try? input.fileHandleForWriting.close()
    }
}

/// In a role: returns when stdin reaches its end (the orchestrator closed it or died).
func stdinClosed() async {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
        Thread.detachNewThread {
            var b = [UInt8](repeating: 0, count: 256)
            while true {
                let n = b.withUnsafeMutableBytes { read(0, $0.baseAddress, 256) }
                if n == 0 || (n < 0 && errno != EINTR) { break }
            }
            c.resume()
        }
    }
}

/// A line on stdout, flushed at once (the orchestrator waits for it).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
