import DariBridge
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import RabbitMQ

/// `dari-bridge publish`: a user's first way to try the worker.
enum PublishCommand {
    static func fail(_ message: String) -> Int32 {
        writeToStandardError("dari-bridge publish: \(message)\n")
        return 2
    }

    static func main(arguments: [String], environment: [String: String]) async -> Int32 {
        var url: String? = nil
        var variables: [(String, String)] = []
        var variablesJSON: String? = nil
        var messageId = UUID().uuidString
        var correlationId: String? = nil
        var wait = false
        var waitTimeout = 60
        var rest: [String] = []
        var i = 0
        func value() -> String? {
            i += 1
            return i < arguments.count ? arguments[i] : nil
        }
        while i < arguments.count {
            let a = arguments[i]
            switch a {
            case "--var":
                guard let kv = value(), let eq = kv.firstIndex(of: "=") else { return fail("--var needs key=value") }
                variables.append((String(kv[..<eq]), String(kv[kv.index(after: eq)...])))
            case "--variables-json":
                guard let v = value() else { return fail("--variables-json needs a JSON object") }
                variablesJSON = v
            case "--message-id":
                guard let v = value() else { return fail("--message-id needs a value") }
                messageId = v
            case "--correlation-id":
                guard let v = value() else { return fail("--correlation-id needs a value") }
                correlationId = v
            case "--wait": wait = true
            case "--wait-timeout-s":
                guard let v = value(), let n = Int(v), n > 0 else { return fail("--wait-timeout-s needs a positive number") }
                waitTimeout = n
            default:
                if !a.hasPrefix("--") && url == nil {
                    url = a
                } else {
                    rest.append(a)
                    if !a.contains("="), i + 1 < arguments.count, !arguments[i + 1].hasPrefix("--"), a != "--allow-insecure-http" {
                        i += 1
                        rest.append(arguments[i])
                    }
                }
            }
            i += 1
        }
        guard let url else { return fail("missing <resume-url>") }
        let config: Configuration
        do { config = try Configuration.load(arguments: rest, environment: environment) } catch { return fail("\(error)") }
        if variablesJSON != nil && !variables.isEmpty { return fail("use either --var or --variables-json, not both") }
        let variablesBytes: [UInt8]
        if let variablesJSON {
            variablesBytes = Array(variablesJSON.utf8)
            guard let doc = try? JSONScanner.scan(variablesBytes), doc.kind == .object else { return fail("--variables-json must be a JSON object") }
        } else {
            variablesBytes = ResumeRequest.stringVariablesJSON(variables)
        }
        let body = ResumeRequest.messageBody(resumeURL: url, variablesJSON: variablesBytes)

        do {
            let conn = try await AMQPConnection.connect(to: config.amqpURL, options: config.amqpOptions)
            try await conn.declareQueue(config.queue, durable: true)
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
                return fail("no outcome within \(waitTimeout) s (is a worker running on queue \(config.queue)?)")
            }
            try? conn.ack(deliveryTag: outcome.deliveryTag)
            print(String(decoding: outcome.body, as: UTF8.self))
            await conn.close()
            return String(decoding: outcome.body, as: UTF8.self).hasPrefix("{\"status\":\"succeeded\"") ? 0 : 1
        } catch {
            return fail("\(error)")
        }
    }
}
