import Foundation

/// Runs one of the project's scripts/ and returns its exit status and output
/// (stdout and stderr together). posix_spawn + waitpid on that one pid:
/// Foundation's Process.waitUntilExit was seen to hang here after a script
/// left a broker running in the background (see FaultBroker).
enum ProjectScript {
    static func run(_ script: String, _ args: [String], environment overrides: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let outPath = FileManager.default.temporaryDirectory.appendingPathComponent("script-\(UUID().uuidString.prefix(8)).out").path
        var env = ProcessInfo.processInfo.environment
        for (k, v) in overrides { env[k] = v }
        let argv = ["/bin/bash", FaultBroker.root.appendingPathComponent("scripts/\(script)").path] + args
        let envp = env.map { "\($0.key)=\($0.value)" }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pid: pid_t = 0
        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnv = envp.map { strdup($0) } + [nil]
        defer { cArgv.forEach { free($0) }; cEnv.forEach { free($0) } }
        let rc = posix_spawn(&pid, "/bin/bash", &actions, nil, cArgv, cEnv)
        guard rc == 0 else { throw HarnessError("posix_spawn failed: \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: outPath)
        let exited = status & 0x7f == 0
        return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), output)
    }
}
