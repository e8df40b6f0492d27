import Foundation
import RabbitMQ

/// The two TLS-only RabbitMQ nodes of scripts/tls.sh (port P = 
/// DARI_TEST_TLS_RABBIT_PORT, default 5691: client certificate optional;
/// P+1: client certificate required), started on first use and stopped by
/// scripts/test.sh. The certificates: ca.pem (signed the server and client
/// certificates), other-ca.pem (unrelated), server.pem for DNS:localhost only.
enum TLSNodes {
    static let port = Int(ProcessInfo.processInfo.environment["DARI_TEST_TLS_RABBIT_PORT"] ?? "") ?? 5691
    static var clientCertPort: Int { port + 1 }
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static var certs: String { root.appendingPathComponent(".rabbitmq/tls-\(port)/certs").path }

    static func file(_ name: String) -> String { "\(certs)/\(name)" }

    /// nil once both nodes run, else what the script said. Runs once per process.
    static let startFailure: String? = {
        do {
            let r = try spawn(["/bin/bash", root.appendingPathComponent("scripts/tls.sh").path, "start"])
            return r.status == 0 ? nil : "scripts/tls.sh start failed (\(r.status)): \(r.output)"
        } catch {
            return "\(error)"
        }
    }()

    static func start() throws {
        if let startFailure { throw TestBroker.SetupError(reason: startFailure) }
    }

    /// `amqps://guest:guest@HOST:PORT/%2F?QUERY`, after starting the nodes.
    static func url(host: String = "localhost", port: Int? = nil, _ query: String) throws -> AMQPURL {
        try start()
        return try AMQPURL(parsing: "amqps://guest:guest@\(host):\(port ?? self.port)/%2F\(query.isEmpty ? "" : "?" + query)")
    }

    /// posix_spawn + waitpid on that one pid (as the fault tests do: Process
    /// was seen to hang when the script leaves a broker running).
    static func spawn(_ argv: [String]) throws -> (status: Int32, output: String) {
        let outPath = FileManager.default.temporaryDirectory.appendingPathComponent("tls-sh-\(UUID().uuidString.prefix(8)).out").path
        var env = ProcessInfo.processInfo.environment
        env["DARI_TEST_TLS_RABBIT_PORT"] = "\(port)"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var pid: pid_t = 0
        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cArgv.forEach { free($0) }; cEnv.forEach { free($0) } }
        let rc = posix_spawn(&pid, argv[0], &actions, nil, cArgv, cEnv)
        guard rc == 0 else { throw TestBroker.SetupError(reason: "posix_spawn failed: \(rc)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: outPath)
        return (status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), output)
    }
}
