import Foundation
import RabbitMQ
import Synchronization

/// The three-node RabbitMQ cluster of scripts/cluster.sh, which the cluster
/// tests start and break themselves (ports DARI_TEST_CLUSTER_PORTS, default
/// 5701 5702 5703; scripts/test.sh stops it when the run ends).
enum ClusterBroker {
    static let ports: [Int] = {
        let text = ProcessInfo.processInfo.environment["DARI_TEST_CLUSTER_PORTS"] ?? "5701 5702 5703"
        let parsed = text.split(separator: " ").compactMap { Int($0) }
        return parsed.count == 3 ? parsed : [5701, 5702, 5703]
    }()
    static let nodes = [1, 2, 3]

    static func port(_ n: Int) -> Int { ports[n - 1] }
    static func node(_ n: Int) -> String { "daribridge-c\(port(n))@localhost" }
    static func url(_ n: Int) -> AMQPURL { AMQPURL(host: "127.0.0.1", port: port(n)) }
    static func urlString(_ n: Int) -> String { "amqp://guest:guest@127.0.0.1:\(port(n))/%2F" }
    /// AMQP_URL for the worker: every node, comma-separated.
    static var urlList: String { nodes.map(urlString).joined(separator: ",") }

    /// Runs scripts/cluster.sh.
    @discardableResult
    static func script(_ args: String...) throws -> (status: Int32, output: String) {
        try run(args)
    }

    static func run(_ args: [String]) throws -> (status: Int32, output: String) {
        try ProjectScript.run("cluster.sh", args, environment: ["DARI_TEST_CLUSTER_PORTS": ports.map(String.init).joined(separator: " ")])
    }

    /// Runs a blocking call (a cluster.sh that takes many seconds) on a
    /// thread of its own, so that the two-core machine's small cooperative
    /// pool keeps serving the publisher and the observer meanwhile.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.start()
        }
    }

    /// Starts the missing nodes and waits until the cluster has three running nodes.
    static func start() throws {
        let r = try script("start")
        guard r.status == 0 else { throw HarnessError("cluster did not start: \(r.output)") }
    }

    static func kill(_ n: Int) throws {
        let r = try script("kill", "\(n)")
        guard r.status == 0 else { throw HarnessError("cluster.sh kill \(n): \(r.output)") }
    }

    static func startNode(_ n: Int) throws {
        let r = try script("start-node", "\(n)")
        guard r.status == 0 else { throw HarnessError("cluster.sh start-node \(n): \(r.output)") }
    }

    /// Graceful stop and start of node n, back to three running nodes.
    static func restartNode(_ n: Int) throws {
        let r = try script("restart-node", "\(n)")
        guard r.status == 0 else { throw HarnessError("cluster.sh restart-node \(n): \(r.output)") }
    }

    static func waitRunning() throws {
        let r = try script("wait")
        guard r.status == 0 else { throw HarnessError("cluster.sh wait: \(r.output)") }
    }

    /// rabbitmqctl against node n (-q: no banner), its output.
    static func ctl(_ n: Int, _ args: String...) throws -> String {
        try run(["ctl", "\(n)", "-q"] + args).output
    }

    /// rabbitmqctl against the first node that answers.
    static func ctlAny(_ args: [String]) throws -> String {
        for n in nodes {
            let r = try run(["ctl", "\(n)", "-q"] + args)
            if r.status == 0 { return r.output }
        }
        throw HarnessError("no cluster node answered rabbitmqctl \(args.joined(separator: " "))")
    }

    /// The node numbers that the worker processes' connections are on, from
    /// `list_connections port client_properties` (cluster-wide; 3.10 has no
    /// `node` column, but each node listens on its own port). The tests'
    /// own connections are named "cluster-test"; every other one is a worker's.
    static func workerConnectionNodes() throws -> [Int] {
        let out = try ctlAny(["list_connections", "port", "client_properties", "--formatter", "json"])
        guard let rows = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]] else { return [] }
        return rows.compactMap { row in
            guard let port = row["port"] as? Int,
                  let props = row["client_properties"],
                  !"\(props)".contains("cluster-test") else { return nil }
            return nodes.first { self.port($0) == port }
        }
    }

    /// Members of a quorum queue (rabbitmqctl list_queues name type members).
    static func queueInfo(_ queue: String) throws -> (type: String, members: [String], messages: Int)? {
        let out = try ctlAny(["list_queues", "name", "type", "members", "messages", "--formatter", "json"])
        guard let rows = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]] else { return nil }
        guard let row = rows.first(where: { $0["name"] as? String == queue }) else { return nil }
        let members = (row["members"] as? [String]) ?? []
        return ((row["type"] as? String) ?? "", members, (row["messages"] as? Int) ?? -1)
    }

    static var options: AMQPConnection.Options {
        var o = AMQPConnection.Options()
        o.connectionName = "cluster-test"
        o.heartbeatSeconds = 5
        o.connectTimeoutSeconds = 3
        return o
    }

    /// A connection to the first node that accepts one, starting at a random node.
    static func connectAny() async throws -> AMQPConnection {
        let start = Int.random(in: 0..<3)
        var last: Error = HarnessError("no node")
        for i in 0..<3 {
            do { return try await AMQPConnection.connect(to: url(nodes[(start + i) % 3]), options: options) } catch { last = error }
        }
        throw last
    }
}
