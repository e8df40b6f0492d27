import DariBridge
import DariBridgeApp
import Foundation
import Testing

private func load(_ environment: [String: String], _ arguments: [String] = []) throws(ConfigurationError) -> Configuration {
    try Configuration.load(arguments: arguments, environment: environment)
}

private func loadError(_ environment: [String: String], _ arguments: [String] = []) -> String? {
    do {
        _ = try load(environment, arguments)
        return nil
    } catch {
        return error.message
    }
}

@Suite struct ConfigurationWebhookTests {
    @Test func offByDefaultWithTheContractsDefaults() throws {
        let w = try load([:]).webhook
        #expect(!w.isOn)
        #expect(w.port == 0)
        #expect(w.path == "/webhooks/dari")
        #expect(w.exchange == "dari.webhooks")
        #expect(w.toleranceSeconds == 300)
        #expect(w.secrets.isEmpty)
        #expect(w.maxBodyBytes == 1_048_576)
    }

    @Test func everySettingFromTheEnvironmentAndFlags() throws {
        let w = try load(["DARI_BRIDGE_WEBHOOK_PORT": "8080", "DARI_BRIDGE_WEBHOOK_SECRET": " s1 , s2 ",
                          "DARI_BRIDGE_WEBHOOK_PATH": "/hooks/dari", "DARI_BRIDGE_WEBHOOK_EXCHANGE": "hooks",
                          "DARI_BRIDGE_WEBHOOK_TOLERANCE_S": "60", "DARI_BRIDGE_WEBHOOK_HOST": "127.0.0.1"]).webhook
        #expect(w.isOn && w.port == 8080)
        #expect(w.secrets.values == ["s1", "s2"])
        #expect(w.path == "/hooks/dari")
        #expect(w.exchange == "hooks")
        #expect(w.toleranceSeconds == 60)
        #expect(w.host == "127.0.0.1")
        let f = try load(["DARI_BRIDGE_WEBHOOK_PORT": "8080", "DARI_BRIDGE_WEBHOOK_SECRET": "env"], ["--webhook-port", "8081", "--webhook-secret=flag"]).webhook
        #expect(f.port == 8081)
        #expect(f.secrets.values == ["flag"])
    }

    @Test func secretFromAFileTrimmed() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("webhook-secret-\(UUID().uuidString)").path
        try "  whsec_abc\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let w = try load(["DARI_BRIDGE_WEBHOOK_PORT": "8080", "DARI_BRIDGE_WEBHOOK_SECRET_FILE": path]).webhook
        #expect(w.secrets.values == ["whsec_abc"])
        try "new\nold\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try load(["DARI_BRIDGE_WEBHOOK_SECRET_FILE": path]).webhook.secrets.values == ["new", "old"])
        try "\n \n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(loadError(["DARI_BRIDGE_WEBHOOK_SECRET_FILE": path])?.contains("is empty") == true)
        #expect(loadError(["DARI_BRIDGE_WEBHOOK_SECRET_FILE": path + ".missing"])?.hasPrefix("invalid DARI_BRIDGE_WEBHOOK_SECRET_FILE") == true)
    }

    @Test func startUpErrorsNameTheSettingAndNeverTheSecret() throws {
        let noSecret = try #require(loadError(["DARI_BRIDGE_WEBHOOK_PORT": "8080"]))
        #expect(noSecret.hasPrefix("invalid DARI_BRIDGE_WEBHOOK_SECRET (--webhook-secret):"))
        #expect(noSecret.contains("DARI_BRIDGE_WEBHOOK_SECRET_FILE"))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("webhook-secret-\(UUID().uuidString)").path
        try "filesecret".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let both = try #require(loadError(["DARI_BRIDGE_WEBHOOK_SECRET": "topsecret", "DARI_BRIDGE_WEBHOOK_SECRET_FILE": path]))
        #expect(both.contains("DARI_BRIDGE_WEBHOOK_SECRET_FILE") && both.contains("not both"))
        let empty = try #require(loadError(["DARI_BRIDGE_WEBHOOK_SECRET": "topsecret,,other"]))
        #expect(empty.hasPrefix("invalid DARI_BRIDGE_WEBHOOK_SECRET"))
        for message in [noSecret, both, empty] {
            #expect(!message.contains("topsecret") && !message.contains("filesecret") && !message.contains("other"))
        }
        #expect(loadError(["DARI_BRIDGE_WEBHOOK_PORT": "70000", "DARI_BRIDGE_WEBHOOK_SECRET": "s"])?.hasPrefix("invalid DARI_BRIDGE_WEBHOOK_PORT") == true)
        #expect(loadError(["DARI_BRIDGE_WEBHOOK_PORT": "9464", "DARI_BRIDGE_WEBHOOK_SECRET": "s"])?.contains("DARI_BRIDGE_HTTP_PORT") == true)
        #expect(loadError(["DARI_BRIDGE_WEBHOOK_TOLERANCE_S": "-1"])?.hasPrefix("invalid DARI_BRIDGE_WEBHOOK_TOLERANCE_S") == true)
        for bad in ["webhooks", "/a b", "/a?x=1", "/a#f", ""] {
            #expect(loadError(["DARI_BRIDGE_WEBHOOK_PATH": bad])?.hasPrefix("invalid DARI_BRIDGE_WEBHOOK_PATH") == true, "\(bad)")
        }
        #expect(loadError(["DARI_BRIDGE_WEBHOOK_EXCHANGE": " "])?.hasPrefix("invalid DARI_BRIDGE_WEBHOOK_EXCHANGE") == true)
    }

    @Test func secretsAreNeverPrinted() throws {
        let w = try load(["DARI_BRIDGE_WEBHOOK_SECRET": "hunter2,hunter3"]).webhook
        #expect("\(w.secrets)" == "<2 secret(s), redacted>")
        #expect(!"\(w)".contains("hunter"))
        #expect(!String(reflecting: w).contains("hunter"))
        #expect(Configuration.helpText.contains("DARI_BRIDGE_WEBHOOK_SECRET_FILE"))
    }
}
