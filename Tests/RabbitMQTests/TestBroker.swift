import Foundation
import RabbitMQ

/// The broker the tests run against: started by scripts/test.sh, which exports
/// DARI_TEST_AMQP_URL. Without it the tests fail with a clear message
/// instead of skipping.
enum TestBroker {
    static var url: AMQPURL {
        get throws {
            guard let text = ProcessInfo.processInfo.environment["DARI_TEST_AMQP_URL"] else {
                throw SetupError(reason: "DARI_TEST_AMQP_URL is not set: run the tests with scripts/test.sh, which starts RabbitMQ")
            }
            return try AMQPURL(parsing: text)
        }
    }

    struct SetupError: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    static func connect() async throws -> AMQPConnection {
        try await AMQPConnection.connect(to: try url)
    }

    static func uniqueName(_ prefix: String) -> String {
        "\(prefix).\(UUID().uuidString.prefix(8))"
    }
}
