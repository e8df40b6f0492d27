import RabbitMQ
import Testing

/// Inputs found by the `amqpurl` fuzz target (scripts/fuzz.sh; the inputs are in
/// Fuzz/corpus/amqpurl/crash-*): the password must not show in a parse error nor in the
/// parsed URL's description (both get logged). Uses only `AMQPURL(parsing:)` and
/// `String(describing:)`, as the parser is being reworked on another branch.
@Suite("AMQPURL: fuzz regressions")
struct AMQPURLRegressionTests {
    private func shown(_ text: String) -> String {
        do { return String(describing: try AMQPURL(parsing: text)) } catch { return String(describing: error) }
    }

    /// `@` followed by a combining mark (U+0741) is one `Character`: a parser that looks for
    /// "@" among Characters finds no userinfo, takes `user:password@...` as host:port and
    /// echoes the password as the "port". The parser of the `tls` branch (5877557) passes.
    @Test func aCombiningMarkAfterTheAtSignDoesNotExposeThePassword() {
        let text = shown("amqp://u:Sup3rSecretPass@\u{741}broker.example")
        #expect(!text.contains("Sup3rSecretPass"), "\(text.debugDescription)")
    }

    /// A prepended concatenation mark (U+0601) before ":" is one `Character` with it: a parser
    /// that looks for ":" among Characters takes `user<U+0601>:password` as the user name and
    /// `description` printed it. Fixed by refusing non-ASCII URLs (RFC 3986: percent-encode).
    @Test func aPrependMarkBeforeTheColonDoesNotExposeThePassword() {
        let text = shown("amqp://user\u{601}:Sup3rSecretPass@broker.example")
        #expect(!text.contains("Sup3rSecretPass"), "\(text.debugDescription)")
    }
}
