import ArgumentParser
import DariBridge
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import RabbitMQ

/// `dari-bridge publish`: a user's first way to try the worker.
package struct PublishCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Publish one resume request (persistent, confirmed); with --wait, print the outcome that comes back.",
        discussion: "Exit status: 0 when published (with --wait: when the outcome is succeeded), 1 for a failed outcome, 2 for an error.")

    @Argument(help: ArgumentHelp("the resume_workflow_url to POST to", valueName: "resume-url"))
    package var resumeURL: String

    @Option(name: .customLong("var"), help: ArgumentHelp("a string variable (repeatable)", valueName: "key=value"))
    package var variables: [String] = []

    @Option(name: .customLong("variables-json"), help: ArgumentHelp("the variables as a JSON object (not with --var)", valueName: "json"))
    package var variablesJSON: String? = nil

    @Option(name: .customLong("message-id"), help: ArgumentHelp("the message_id (default: a new UUID)", valueName: "id"))
    package var messageId: String? = nil

    @Option(name: .customLong("correlation-id"), help: ArgumentHelp("the correlation_id (default: the message_id)", valueName: "id"))
    package var correlationId: String? = nil

    @Flag(help: "wait for the outcome on a temporary reply queue and print it")
    package var wait = false

    @Option(name: .customLong("wait-timeout-s"), help: ArgumentHelp("how long --wait waits", valueName: "seconds"))
    package var waitTimeout = 60

    @OptionGroup(title: "Settings") package var settings: SettingOptions

    package init() {}

    static func fail(_ message: String) -> Int32 {
        writeToStandardError("dari-bridge publish: \(message)\n")
        return 2
    }

    func run(environment: [String: String]) async -> Int32 {
        var pairs: [(String, String)] = []
        for kv in variables {
            guard let eq = kv.firstIndex(of: "=") else { return Self.fail("--var needs key=value") }
            pairs.append((String(kv[..<eq]), String(kv[kv.index(after: eq)...])))
        }
        guard waitTimeout > 0 else { return Self.fail("--wait-timeout-s needs a positive number") }
        let config: Configuration
        do { config = try Configuration.load(flags: settings.values, environment: environment) } catch { return Self.fail("\(error)") }
        if variablesJSON != nil && !pairs.isEmpty { return Self.fail("use either --var or --variables-json, not both") }
        let variablesBytes: [UInt8]
        if let variablesJSON {
            variablesBytes = Array(variablesJSON.utf8)
            guard let doc = try? JSONScanner.scan(variablesBytes), doc.kind == .object else { return Self.fail("--variables-json must be a JSON object") }
        } else {
            variablesBytes = ResumeRequest.stringVariablesJSON(pairs)
        }
        let body = ResumeRequest.messageBody(resumeURL: resumeURL, variablesJSON: variablesBytes)
        let messageId = self.messageId ?? UUID().uuidString

        do {
            var conn = try await AMQPConnection.connect(to: config.amqpURL, options: config.amqpOptions)
            // As the worker does: an existing queue is used as it is (a declare with other
            // arguments than the queue's, e.g. none for the worker's quorum queue, fails with
            // 406 PRECONDITION_FAILED); a missing one is declared with DARI_BRIDGE_QUEUE_TYPE.
            do {
                _ = try await conn.checkQueue(config.queue)
            } catch let e as AMQPError where e.replyCode == 404 {
                // The broker closed the channel (404): declare on a new connection.
                await conn.close()
                conn = try await AMQPConnection.connect(to: config.amqpURL, options: config.amqpOptions)
                _ = try await conn.declareQueue(config.queue, durable: true, arguments: config.inputQueueArguments)
            }
            var replyQueue: String? = nil
            var consumer: AMQPConnection.Consumer? = nil
            if wait {
                replyQueue = try await conn.declareQueue("", durable: false, exclusive: true, autoDelete: true).name
                consumer = try await conn.consume(queue: replyQueue!)
            }
            try await conn.publish(exchange: "", routingKey: config.queue, body: body,
                                   properties: AMQPProperties(contentType: "application/json", messageId: messageId,
                                                              correlationId: correlationId ?? messageId, replyTo: replyQueue, persistent: true),
                                   mandatory: true)
            writeToStandardError("published \(messageId) to queue \(config.queue)\n")
            guard let consumer else {
                await conn.close()
                return 0
            }
            let timeout = waitTimeout
            let outcome = try await withThrowingTaskGroup(of: AMQPDelivery?.self) { group in
                group.addTask {
                    for try await d in consumer.deliveries { return d }
                    return nil
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(timeout))
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                return first
            }
            guard let outcome else {
                await conn.close()
                return Self.fail("no outcome within \(waitTimeout) s (is a worker running on queue \(config.queue)?)")
            }
            try? conn.ack(deliveryTag: outcome.deliveryTag)
            print(String(decoding: outcome.body, as: UTF8.self))
            await conn.close()
            return String(decoding: outcome.body, as: UTF8.self).hasPrefix("{\"status\":\"succeeded\"") ? 0 : 1
        } catch {
            return Self.fail("\(error)")
        }
    }
}
