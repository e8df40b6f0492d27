import Foundation
import Testing
@testable import RabbitMQ

/// amqps:// against real RabbitMQ TLS nodes (scripts/tls.sh).
@Suite struct TLSConnectionTests {
    func connectError(_ url: AMQPURL, options: AMQPConnection.Options = AMQPConnection.Options()) async -> AMQPError? {
        do {
            let c = try await AMQPConnection.connect(to: url, options: options)
            await c.close()
            return nil
        } catch let error as AMQPError {
            return error
        } catch {
            Issue.record("not an AMQPError: \(error)")
            return nil
        }
    }

    @Test func withTheTestCAPublishesAndConsumes() async throws {
        let url = try TLSNodes.url("cacertfile=\(TLSNodes.file("ca.pem"))")
        let c = try await AMQPConnection.connect(to: url)
        let queue = TestBroker.uniqueName("tls.q")
        try await c.declareQueue(queue, durable: false, autoDelete: false)
        try await c.publish(exchange: "", routingKey: queue, body: Array("over TLS".utf8),
                            properties: AMQPProperties(messageId: "t1"), mandatory: true)
        let consumer = try await c.consume(queue: queue)
        var got: AMQPDelivery? = nil
        for try await d in consumer.deliveries {
            got = d
            try c.ack(deliveryTag: d.deliveryTag)
            break
        }
        try await c.deleteQueue(queue)
        await c.close()
        #expect(got.map { String(decoding: $0.body, as: UTF8.self) } == "over TLS")
        #expect(got?.properties.messageId == "t1")
    }

    @Test func aCAThatDidNotSignTheBrokerIsRefused() async throws {
        let url = try TLSNodes.url("cacertfile=\(TLSNodes.file("other-ca.pem"))")
        let error = try #require(await connectError(url))
        #expect(error.kind == .connect)
        #expect(error.text.contains("SSL peer cert verification failed"), "\(error)")
        #expect(error.text.contains("other-ca.pem"), "\(error)")
        #expect(!error.text.contains("guest@") && !error.description.contains(":guest"), "\(error)")
    }

    @Test func anIPAddressDoesNotMatchACertificateForLocalhost() async throws {
        let url = try TLSNodes.url(host: "127.0.0.1", "cacertfile=\(TLSNodes.file("ca.pem"))")
        let error = try #require(await connectError(url))
        #expect(error.kind == .connect)
        #expect(error.text.contains("SSL hostname verification failed"), "\(error)")
    }

    @Test func verifyNoneConnectsDespiteHostAndCA() async throws {
        for query in ["verify=verify_none", "verify=verify_none&cacertfile=\(TLSNodes.file("other-ca.pem"))"] {
            let url = try TLSNodes.url(host: "127.0.0.1", query)
            let c = try await AMQPConnection.connect(to: url)
            try await c.declareExchange(TestBroker.uniqueName("tls.x"), type: "fanout", durable: false)
            await c.close()
        }
    }

    @Test func aNodeThatRequiresAClientCertificate() async throws {
        let ca = "cacertfile=\(TLSNodes.file("ca.pem"))"
        let withCert = try TLSNodes.url(port: TLSNodes.clientCertPort, "\(ca)&certfile=\(TLSNodes.file("client.pem"))&keyfile=\(TLSNodes.file("client.key"))")
        let c = try await AMQPConnection.connect(to: withCert)
        #expect(c.isOpen)
        await c.close()

        let without = try TLSNodes.url(port: TLSNodes.clientCertPort, ca)
        let error = try #require(await connectError(without))
        #expect(error.kind == .connect, "\(error)")
        #expect(error.text.contains("client certificate"), "\(error)")

        // The certificate and key from Options work the same way.
        var options = AMQPConnection.Options()
        options.tls = AMQPTLSOptions(certFile: TLSNodes.file("client.pem"), keyFile: TLSNodes.file("client.key"))
        let c2 = try await AMQPConnection.connect(to: without, options: options)
        await c2.close()
    }

    @Test func urlSettingsWinOverOptions() async throws {
        var options = AMQPConnection.Options()
        options.tls.caFile = TLSNodes.file("other-ca.pem")
        options.heartbeatSeconds = 10
        let url = try TLSNodes.url("cacertfile=\(TLSNodes.file("ca.pem"))&heartbeat=7&connection_timeout=5000")
        let c = try await AMQPConnection.connect(to: url, options: options)
        #expect(c.negotiatedHeartbeatSeconds == 7)
        await c.close()
        // Without the URL's cacertfile the Options' CA applies, and refuses the broker.
        let error = try #require(await connectError(try TLSNodes.url(""), options: options))
        #expect(error.text.contains("SSL peer cert verification failed"), "\(error)")
        options.tls.caFile = TLSNodes.file("ca.pem")
        let c2 = try await AMQPConnection.connect(to: try TLSNodes.url(""), options: options)
        #expect(c2.negotiatedHeartbeatSeconds == 10)
        await c2.close()
    }

    @Test(arguments: [
        ("cacertfile=/nonexistent/ca.pem", "cannot read /nonexistent/ca.pem"),
        ("cacertfile=/etc", "not a regular file"),
        ("cacertfile=SERVER_KEY", "no PEM certificate"),
        ("cacertfile=CA&certfile=CLIENT_CERT&keyfile=SERVER_KEY", "could not load them"),
        ("cacertfile=CA&certfile=CLIENT_CERT&keyfile=CLIENT_CERT", "no PEM private key"),
    ])
    func badFilesAreClearConnectErrors(_ query: String, _ expected: String) async throws {
        let q = query.replacingOccurrences(of: "SERVER_KEY", with: TLSNodes.file("server.key"))
            .replacingOccurrences(of: "CLIENT_CERT", with: TLSNodes.file("client.pem"))
            .replacingOccurrences(of: "CA&", with: TLSNodes.file("ca.pem") + "&")
        let error = try #require(await connectError(try TLSNodes.url(q)))
        #expect(error.kind == .connect)
        #expect(error.text.contains(expected), "\(error)")
    }

    @Test func theSystemBundleDoesNotKnowTheTestCA() async throws {
        // No CA named anywhere: the system bundle is loaded (rabbitmq-c 0.11
        // would load none), and it does not trust our test CA.
        let error = try #require(await connectError(try TLSNodes.url("")))
        #expect(error.text.contains("SSL peer cert verification failed"), "\(error)")
        #expect(error.text.contains(AMQPTLSOptions.systemCAFile()), "\(error)")
    }
}
