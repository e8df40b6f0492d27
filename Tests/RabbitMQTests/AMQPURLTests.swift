import Testing
@testable import RabbitMQ

@Suite struct AMQPURLTests {
    @Test func defaultsAndPercentDecoding() throws {
        let url = try AMQPURL(parsing: "amqp://us%40er:p%3Ass@broker.example:5673/%2F")
        #expect(url.user == "us@er")
        #expect(url.password == "p:ss")
        #expect(url.host == "broker.example")
        #expect(url.port == 5673)
        #expect(url.vhost == "/")
        #expect(url.tls == false)
        #expect(!url.description.contains("p:ss"))
    }

    @Test func tlsDefaultPortAndNamedVhost() throws {
        let url = try AMQPURL(parsing: "amqps://u:p@h/prod")
        #expect(url.tls)
        #expect(url.port == 5671)
        #expect(url.vhost == "prod")
    }

    @Test func noPathMeansRootVhostAndGuest() throws {
        let url = try AMQPURL(parsing: "amqp://localhost")
        #expect(url.vhost == "/")
        #expect(url.user == "guest")
        #expect(url.port == 5672)
    }

    @Test func ipv6Host() throws {
        let url = try AMQPURL(parsing: "amqp://[::1]:5679/v")
        #expect(url.host == "::1")
        #expect(url.port == 5679)
    }

    @Test(arguments: ["http://x", "amqp://h:99999/", "amqp://h:abc/", "amqp://u:p%zz@h/", "amqp://[::1/", ""])
    func rejectsMalformed(_ text: String) {
        #expect(throws: AMQPURL.ParseError.self) { try AMQPURL(parsing: text) }
    }
}
