import Testing
@testable import RabbitMQ

/// RabbitMQ's URI query parameters and AMQP_URL lists.
@Suite struct AMQPURLQueryTests {
    func reason(_ text: String) -> String? {
        do {
            _ = try AMQPURL(parsing: text)
            return nil
        } catch {
            return error.reason
        }
    }

    @Test func everySupportedParameter() throws {
        let url = try AMQPURL(parsing: "amqps://u:p@localhost:5671/v?heartbeat=7&connection_timeout=2500&cacertfile=%2Fetc%2Fca.pem&certfile=/c.pem&keyfile=/k%20x.pem&verify=verify_none&server_name_indication=LOCALHOST")
        #expect(url.heartbeatSeconds == 7)
        #expect(url.connectionTimeoutMs == 2500)
        #expect(url.tlsOptions == AMQPTLSOptions(caFile: "/etc/ca.pem", certFile: "/c.pem", keyFile: "/k x.pem", verifyPeer: false))
        #expect(url.vhost == "v")
        #expect(url.host == "localhost")
    }

    @Test func noQueryMeansNothingSet() throws {
        let url = try AMQPURL(parsing: "amqps://u:p@h/")
        #expect(url.heartbeatSeconds == nil)
        #expect(url.connectionTimeoutMs == nil)
        #expect(url.tlsOptions.isEmpty)
        #expect(try AMQPURL(parsing: "amqp://h/?") == AMQPURL(parsing: "amqp://h/"))
        #expect(try AMQPURL(parsing: "amqps://h?verify=verify_peer").tlsOptions.verifyPeer == true)
        #expect(try AMQPURL(parsing: "amqp://h?heartbeat=0").heartbeatSeconds == 0)
    }

    @Test(arguments: [
        ("amqp://h/?frame_max=4096", "frame_max"),
        ("amqp://h/?auth_mechanism=plain", "auth_mechanism"),
        ("amqp://h/?Heartbeat=5", "Heartbeat"),
        ("amqp://h/?secretvalue", "secretvalue"),
    ])
    func unknownParameterIsNamedNotItsValue(_ text: String, _ name: String) throws {
        let r = try #require(reason(text))
        #expect(r.contains(name), "\(r)")
        #expect(r.contains("unknown"), "\(r)")
        #expect(!r.contains("4096") && !r.contains("plain"), "\(r)")
    }

    @Test(arguments: [
        ("amqp://h/?heartbeat=-1", "heartbeat"),
        ("amqp://h/?heartbeat=65536", "heartbeat"),
        ("amqp://h/?heartbeat=1.5", "heartbeat"),
        ("amqp://h/?heartbeat=", "heartbeat"),
        ("amqp://h/?heartbeat", "heartbeat"),
        ("amqp://h/?heartbeat=5&heartbeat=6", "more than once"),
        ("amqp://h/?connection_timeout=0", "connection_timeout"),
        ("amqp://h/?connection_timeout=99999999999999999999999", "connection_timeout"),
        ("amqps://h/?verify=yes", "verify"),
        ("amqps://h/?cacertfile=", "cacertfile"),
        ("amqps://h/?cacertfile=%00", "NUL"),
        ("amqps://h/?certfile=/c.pem", "keyfile"),
        ("amqps://h/?keyfile=/k.pem", "certfile"),
        ("amqp://h/?cacertfile=/ca.pem", "amqps"),
        ("amqp://h/?verify=verify_none", "amqps"),
        ("amqps://broker.example/?server_name_indication=other.example", "server_name_indication"),
        ("amqps://broker.example/?server_name_indication=disable", "server_name_indication"),
        ("amqp://h/#frag", "fragment"),
    ])
    func badParameterValuesAreClear(_ text: String, _ mentioned: String) throws {
        let r = try #require(reason(text), "\(text) parsed")
        #expect(r.contains(mentioned), "\(r)")
        #expect(!r.contains("\n"))
    }

    @Test func sniDifferentFromTheHostExplainsTheLimitation() throws {
        let r = try #require(reason("amqps://10.0.0.5/?server_name_indication=broker.example"))
        #expect(r.contains("librabbitmq"), "\(r)")
        #expect(r.contains("host"), "\(r)")
    }

    @Test func listOfURLs() throws {
        let urls = try AMQPURL.parseList(" amqp://u:p@node1:5672/%2F ,\tamqps://u:p@node2/?heartbeat=3\n")
        #expect(urls.count == 2)
        #expect(urls[0].host == "node1")
        #expect(urls[1].host == "node2")
        #expect(urls[1].tls)
        #expect(urls[1].heartbeatSeconds == 3)
        #expect(try AMQPURL.parseList("amqp://h") == [AMQPURL(parsing: "amqp://h")])
    }

    @Test(arguments: ["", "  ", "amqp://a,", ",amqp://a", "amqp://a,,amqp://b", "amqp://a, ,amqp://b"])
    func emptyListItemsAreAnError(_ text: String) {
        #expect(throws: AMQPURL.ParseError.self) { try AMQPURL.parseList(text) }
    }

    @Test func listErrorsSayWhichURL() throws {
        do {
            _ = try AMQPURL.parseList("amqp://a,amqp://b:99999")
            Issue.record("parsed")
        } catch {
            #expect(error.reason.hasPrefix("URL 2 of 2: "), "\(error.reason)")
        }
    }

    @Test func tlsOptionsMergeURLOverDefaults() {
        let defaults = AMQPTLSOptions(caFile: "/default-ca", certFile: "/dc", keyFile: "/dk", verifyPeer: nil)
        #expect(AMQPTLSOptions().merged(over: defaults) == defaults)
        let url = AMQPTLSOptions(caFile: "/url-ca", certFile: "/uc", keyFile: "/uk", verifyPeer: false)
        #expect(url.merged(over: defaults) == url)
        #expect(AMQPTLSOptions(verifyPeer: true).merged(over: defaults) == AMQPTLSOptions(caFile: "/default-ca", certFile: "/dc", keyFile: "/dk", verifyPeer: true))
    }
}
