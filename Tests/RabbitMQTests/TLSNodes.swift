import Foundation
import RabbitMQ
import TestSupport

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

    /// On SpawnedProcess (posix_spawn + waitpid on that one pid: Process was seen
    /// to hang when the script leaves a broker running).
    static func spawn(_ argv: [String]) throws -> (status: Int32, output: String) {
        var env = ProcessInfo.processInfo.environment
        env["DARI_TEST_TLS_RABBIT_PORT"] = "\(port)"
        do {
            return try SpawnedProcess.run(argv, environment: env)
        } catch {
            throw TestBroker.SetupError(reason: "\(error)")
        }
    }
}
