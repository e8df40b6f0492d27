import Testing
@testable import RabbitMQ

/// A password never shows in an error or in `description`, however the URL
/// is broken: a user pastes `amqp://admin:Xy7?9k@host/` and the error goes to
/// a log.
@Suite struct AMQPURLCredentialsTests {
    func parseError(_ text: String) -> AMQPURL.ParseError? {
        do {
            _ = try AMQPURL(parsing: text)
            return nil
        } catch {
            return error
        }
    }

    /// Each URL holds an unencoded character that ends the authority early;
    /// none may parse, and the error must not quote the secret part.
    @Test(arguments: [
        ("amqp://admin:Xy7?9k@host/", ["Xy7", "9k"]),
        ("amqp://admin:1234/secret@host/", ["1234", "secret"]),
        ("amqp://admin:Zq#Wv@host/", ["Zq", "Wv"]),
        ("amqp://admin:s3cr3t/x?y@host:5672/vh", ["s3cr3t", "x?y"]),
        ("amqp://admin:Qa@Qb@host/", ["Qa", "Qb"]),
        ("amqps://admin:topsecret", ["topsecret"]),
        ("amqp://admin:hunter2:more@host/", []),
        ("amqp://admin:p w$x/@host/", ["p w$x"]),
        ("amqp://admin:Kx%zzQw@host/", ["Kx", "Qw"]),
        ("amqp://admin:Mn%00Vb@host/", ["Mn", "Vb"]),
    ])
    func brokenURLsNeverEchoThePassword(_ text: String, _ secrets: [String]) throws {
        if text == "amqp://admin:hunter2:more@host/" {
            // A ':' in the password is allowed unencoded (only the first ':' separates).
            let url = try AMQPURL(parsing: text)
            #expect(url.password == "hunter2:more")
            #expect(!url.description.contains("hunter2"))
            return
        }
        let error = try #require(parseError(text), "\(text) parsed")
        #expect(!error.reason.contains("admin"), "\(error.reason)")
        for secret in secrets {
            #expect(!error.reason.contains(secret), "\(error.reason) quotes \(secret)")
        }
        #expect(!error.reason.isEmpty)
    }

    @Test func anAtAfterTheHostSaysToPercentEncode() throws {
        let error = try #require(parseError("amqp://admin:1234/secret@host/"))
        #expect(error.reason.contains("percent-encode"))
        let query = try #require(parseError("amqp://admin:Xy7?9k@host/"))
        #expect(query.reason.contains("percent-encode"))
    }

    @Test func percentEncodedReservedCharactersWork() throws {
        let url = try AMQPURL(parsing: "amqp://u:p%40ss%3Aw%2Frd%3F%23%2C@host/")
        #expect(url.user == "u")
        #expect(url.password == "p@ss:w/rd?#,")
        #expect(url.host == "host")
        #expect(url.vhost == "/")
        #expect(!url.description.contains("p@ss"))
        #expect(!url.description.contains("p%40ss"))
        #expect(url.description == "amqp://u@host:5672/%2F")
    }

    @Test func descriptionLeavesThePasswordOutButShowsTheRest() throws {
        let url = try AMQPURL(parsing: "amqps://bob:Sup3rS3cret@broker.example:5671/prod?heartbeat=5&verify=verify_none")
        #expect(url.description == "amqps://bob@broker.example:5671/prod?heartbeat=5&verify=verify_none")
    }

    @Test func aUserWithoutPasswordHasAnEmptyPassword() throws {
        let url = try AMQPURL(parsing: "amqp://bob@h/")
        #expect(url.user == "bob")
        #expect(url.password == "")
    }

    @Test func aListSplitByACommaInAPasswordNeverEchoesIt() throws {
        do {
            _ = try AMQPURL.parseList("amqp://u:Rt,Yu@h1/")
            Issue.record("parsed")
        } catch {
            #expect(!error.reason.contains("Rt"), "\(error.reason)")
            #expect(!error.reason.contains("Yu"), "\(error.reason)")
            #expect(error.reason.contains("%2C"), "\(error.reason)")
        }
    }
}
