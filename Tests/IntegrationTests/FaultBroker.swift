import Foundation
import RabbitMQ
import Synchronization

/// A RabbitMQ node that the fault tests start, stop and break themselves, via
/// scripts/rabbitmq.sh: its own node name, port and folder, so neither a
/// developer's broker nor the suite's main test broker is touched.
enum FaultBroker {
    static let port = Int(ProcessInfo.processInfo.environment["DARI_TEST_FAULT_RABBIT_PORT"] ?? "") ?? 5690
    static var node: String { "daribridge-faults-\(port)@localhost" }
    static var url: AMQPURL { AMQPURL(host: "127.0.0.1", port: port) }
    static var urlString: String { "amqp://guest:guest@127.0.0.1:\(port)/%2F" }
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs scripts/rabbitmq.sh for the fault node. posix_spawn + waitpid on
    /// that one pid: Foundation's Process.waitUntilExit was seen to hang here
    /// after the script left the broker running in the background.
    @discardableResult
    static func script(_ args: String...) throws -> (status: Int32, output: String) {
        try run(args)
    }

    static func run(_ args: [String]) throws -> (status: Int32, output: String) {
        try ProjectScript.run("rabbitmq.sh", args, environment: [
            "RABBIT_PORT": "\(port)", "RABBIT_NODE": node,
            "RABBIT_DIR": root.appendingPathComponent(".rabbitmq/faults").path,
        ])
    }

    /// The pid of the fault node's Erlang VM (its environment names the node;
    /// the command line does not).
    static func beamPid() -> pid_t? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for entry in entries {
            guard let pid = pid_t(entry),
                  let cmd = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                  String(decoding: cmd.prefix(while: { $0 != 0 }), as: UTF8.self).hasSuffix("beam.smp"),
                  let env = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { continue }
            let vars = env.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if vars.contains("RABBITMQ_NODENAME=\(node)") { return pid }
        }
        return nil
    }

    static func start() throws {
        let r = try script("start")
        guard r.status == 0 else { throw HarnessError("fault broker did not start: \(r.output)") }
    }

    static func stop() throws { try script("stop") }

    static func ctl(_ args: String...) throws -> String {
        try run(["ctl"] + args).output
    }
}

/// Collects outcomes across broker restarts: reconnects on any loss; its
/// results queue is durable so nothing published meanwhile is missed.
final class ResilientObserver: Sendable {
    let exchange: String
    let queue: String
    let counts = Mutex<[String: Int]>([:])
    let statuses = Mutex<[String: String]>([:])
    let task = Mutex<Task<Void, Never>?>(nil)

    init(exchange: String) {
        self.exchange = exchange
        self.queue = "\(exchange).observer"
    }

    func start() {
        let t = Task { [self] in
            while !Task.isCancelled {
                do {
                    let c = try await AMQPConnection.connect(to: FaultBroker.url)
                    try await c.declareExchange(exchange, type: "topic", durable: true)
                    try await c.declareQueue(queue, durable: true)
                    try await c.bindQueue(queue, exchange: exchange, routingKey: "#")
                    let consumer = try await c.consume(queue: queue)
                    try await withTaskCancellationHandler {
                        for try await d in consumer.deliveries {
                            if let id = ReceivedOutcome(d).messageId {
                                counts.withLock { $0[id, default: 0] += 1 }
                                statuses.withLock { $0[id] = ReceivedOutcome(d).body?.status }
                            }
                            try? c.ack(deliveryTag: d.deliveryTag)
                        }
                    } onCancel: {
                        Task { await c.close() }
                    }
                    await c.close()
                } catch {}
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        task.withLock { $0 = t }
    }

    func stop() async {
        let t = task.withLock { $0 }
        t?.cancel()
        await t?.value
    }

    var distinct: Int { counts.withLock { $0.count } }
    var total: Int { counts.withLock { $0.values.reduce(0, +) } }
    var duplicates: Int { total - distinct }

    func waitForDistinct(_ n: Int, timeout: Duration) async -> Int {
        let deadline = ContinuousClock.now + timeout
        while distinct < n && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        return distinct
    }
}
