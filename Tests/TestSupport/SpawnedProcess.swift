import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with posix_spawn and reaped with waitpid on its own pid:
/// stdin /dev/null, stdout and stderr appended to one file. Foundation's `Process` was
/// seen to miss a child's exit here (the child a zombie, `waitUntilExit` spinning a core
/// forever, the whole test run hung), so the tests' worker processes do not use it.
package final class SpawnedProcess: Sendable {
    package let processIdentifier: pid_t
    /// The wait status once reaped.
    private let reaped = Mutex<Int32?>(nil)

    package init(executable: String, arguments: [String], environment: [String: String], outputPath: String) throws {
        let argv = [executable] + arguments
        let envp = environment.map { "\($0.key)=\($0.value)" }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of the test process goes to the child: a broker a script starts lives
        // for the whole run, and a test server's socket it inherited stays open in it (the
        // server's close never reached its client: seen as timeouts in unrelated tests).
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }
        var pid: pid_t = 0
        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnv = envp.map { strdup($0) } + [nil]
        defer { cArgv.forEach { free($0) }; cEnv.forEach { free($0) } }
        let rc = posix_spawn(&pid, executable, &actions, nil, cArgv, cEnv)
        guard rc == 0 else { throw SpawnError(code: rc) }
        processIdentifier = pid
    }

    /// glibc 2.34's `posix_spawn_file_actions_addclosefrom_np` (not in Swift's Glibc module,
    /// which is built without _GNU_SOURCE), looked up once.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    package struct SpawnError: Error, CustomStringConvertible {
        package let code: Int32
        package var description: String { "posix_spawn failed: \(code)" }
    }

    /// Reaps the child when it has exited (never blocks).
    private func poll() -> Int32? {
        reaped.withLock { status in
            if let status { return status }
            var s: Int32 = 0
            let r = waitpid(processIdentifier, &s, WNOHANG)
            if r == processIdentifier { status = s }
            return status
        }
    }

    package var isRunning: Bool { poll() == nil }

    /// The exit code, or the signal number for a child killed by a signal (as Foundation's
    /// `terminationStatus`); nil while it runs.
    package var terminationStatus: Int32? {
        guard let s = poll() else { return nil }
        return s & 0x7f == 0 ? (s >> 8) & 0xff : s & 0x7f
    }

    package func signal(_ sig: Int32) { if isRunning { kill(processIdentifier, sig) } }

    /// Blocks until the child exits: its exit code, or 128 + the signal number (as a shell says).
    package func waitUntilExit() -> Int32 {
        let s: Int32 = reaped.withLock { status in
            if let status { return status }
            var s: Int32 = 0
            while waitpid(processIdentifier, &s, 0) < 0 && errno == EINTR {}
            status = s
            return s
        }
        return s & 0x7f == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f)
    }

    /// Runs `argv` to its end: the exit status (as `waitUntilExit`) and what it wrote
    /// (stdout and stderr together).
    package static func run(_ argv: [String], environment: [String: String]) throws -> (status: Int32, output: String) {
        let outPath = FileManager.default.temporaryDirectory.appendingPathComponent("spawned-\(UUID().uuidString.prefix(8)).out").path
        defer { try? FileManager.default.removeItem(atPath: outPath) }
        let child = try SpawnedProcess(executable: argv[0], arguments: Array(argv.dropFirst()), environment: environment, outputPath: outPath)
        let status = child.waitUntilExit()
        return (status, (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "")
    }

    /// Waits for the exit; nil if it did not exit in time (then it is killed and reaped).
    package func waitForExit(timeout: Duration) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if let status = terminationStatus { return status }
        kill(processIdentifier, SIGKILL)
        let killDeadline = ContinuousClock.now + .seconds(10)
        while isRunning && ContinuousClock.now < killDeadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }
}
