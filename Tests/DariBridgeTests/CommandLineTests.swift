import ArgumentParser
import DariBridge
@testable import DariBridgeApp
import Testing

/// The command line on swift-argument-parser: subcommands, the generated help
/// and completion scripts, all from the one settings table.
@Suite("CommandLine")
struct CommandLineTests {
    @Test func runIsTheDefaultSubcommand() throws {
        for args in [["--concurrency", "8", "--allow-insecure-http"], ["run", "--concurrency=8", "--allow-insecure-http"]] {
            let run = try #require(try DariBridgeCommand.parseAsRoot(args) as? RunCommand, "\(args)")
            #expect(run.settings.values == ["DARI_BRIDGE_CONCURRENCY": "8", "DARI_BRIDGE_ALLOW_INSECURE_HTTP": "true"])
        }
        let plain = try #require(try DariBridgeCommand.parseAsRoot([]) as? RunCommand)
        #expect(plain.settings.values.isEmpty)
    }

    @Test func publishTakesItsOwnOptionsAndTheSettings() throws {
        let p = try #require(try DariBridgeCommand.parseAsRoot([
            "publish", "https://api.usedari.com/public/send-user-signal/x", "--var", "a=b", "--var", "c=d=e",
            "--wait", "--wait-timeout-s", "5", "--queue", "q", "--amqp-url=amqp://h/",
        ]) as? PublishCommand)
        #expect(p.resumeURL == "https://api.usedari.com/public/send-user-signal/x")
        #expect(p.variables == ["a=b", "c=d=e"])
        #expect(p.wait)
        #expect(p.waitTimeout == 5)
        #expect(p.settings.values == ["DARI_BRIDGE_QUEUE": "q", "AMQP_URL": "amqp://h/"])
        #expect(throws: (any Error).self) { try DariBridgeCommand.parseAsRoot(["publish"]) }
    }

    @Test func theSettingsTableHasUniqueNames() {
        let envs = Configuration.settings.map(\.env), flags = Configuration.settings.map(\.flag)
        #expect(Set(envs).count == envs.count)
        #expect(Set(flags).count == flags.count)
        for s in Configuration.settings {
            #expect(s.env.hasPrefix("DARI_BRIDGE_") || s.env.hasPrefix("AMQP_URL"), "\(s.env)")
            #expect(s.flag.hasPrefix("--") && !s.name.isEmpty, "\(s.flag)")
        }
    }

    @Test func helpIsGeneratedFromTheTable() {
        let run = DariBridgeCommand.helpMessage(for: RunCommand.self, columns: 200)
        let root = DariBridgeCommand.helpMessage(columns: 200)
        let publish = DariBridgeCommand.helpMessage(for: PublishCommand.self, columns: 200)
        for s in Configuration.settings {
            for text in [run, root, publish] {
                #expect(text.contains("\(s.flag) <\(s.env)>") || text.contains("\(s.flag) [<\(s.env)>]"), "\(s.flag) <\(s.env)> missing")
            }
            for text in [run, publish] { #expect(text.contains(s.defaultText), "\(s.defaultText) missing") }
        }
        for name in ["run", "publish", "help"] { #expect(root.contains(name)) }
        for name in ["--var", "--variables-json", "--message-id", "--correlation-id", "--wait", "--wait-timeout-s", "<resume-url>"] {
            #expect(publish.contains(name), "\(name)")
        }
        #expect(Configuration.helpText.contains("--log-format <DARI_BRIDGE_LOG_FORMAT>"))
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func completionScriptsKnowEveryFlag(_ shell: String) throws {
        let script = DariBridgeCommand.completionScript(for: try #require(CompletionShell(rawValue: shell)))
        for s in Configuration.settings {
            // fish names a long option without its dashes (`-l 'concurrency'`).
            #expect(script.contains(shell == "fish" ? "-l '\(s.name)'" : s.flag), "\(shell): \(s.flag)")
        }
        for word in ["publish", "run", shell == "fish" ? "-l 'variables-json'" : "--variables-json"] { #expect(script.contains(word), "\(shell): \(word)") }
    }

    @Test func versionHelpAndCompletionExitZero() async {
        for args in [["--version"], ["--help"], ["run", "--help"], ["help", "publish"], ["--generate-completion-script", "bash"]] {
            #expect(await Application.main(arguments: args, environment: [:]) == 0, "\(args)")
        }
    }

    @Test func badCommandLinesAndEnvironmentsExitTwo() async {
        let cases: [([String], [String: String])] = [
            (["run", "--concurency", "8"], [:]),
            (["frobnicate"], [:]),
            (["run", "--concurrency", "0"], [:]),
            (["run"], ["DARI_BRIDGE_CONCURENCY": "8"]),
            (["publish"], [:]),
            (["publish", "https://x/", "--var", "novalue"], [:]),
            (["publish", "https://x/"], ["DARI_BRIDGE_QUEUE_NAME": "q"]),
        ]
        for (args, env) in cases {
            #expect(await Application.main(arguments: args, environment: env) == 2, "\(args) \(env)")
        }
    }

    @Test func argumentParserErrorsAreOneLine() throws {
        for args in [["--concurency", "8"], ["--concurrency"], ["positional"], ["--allow-insecure-http=maybe", "--nope"]] {
            do {
                _ = try Configuration.load(arguments: args, environment: [:])
                Issue.record("accepted \(args)")
            } catch {
                #expect(!error.message.contains("\n"), "\(error.message.debugDescription)")
                #expect(!error.message.isEmpty)
            }
        }
    }
}

/// An unknown `DARI_BRIDGE_*` variable is a configuration error naming it.
@Suite("UnknownVariables")
struct UnknownVariableTests {
    func error(_ environment: [String: String]) -> ConfigurationError? {
        do {
            _ = try Configuration.load(arguments: [], environment: environment)
            return nil
        } catch {
            return error
        }
    }

    @Test func aTypoIsNamedWithTheNearestSetting() throws {
        let e = try #require(error(["DARI_BRIDGE_CONCURENCY": "8"]))
        #expect(e.message.contains("DARI_BRIDGE_CONCURENCY"))
        #expect(e.message.contains("did you mean DARI_BRIDGE_CONCURRENCY?"), "\(e.message)")
        #expect(!e.message.contains("\n"))
    }

    @Test func theValueIsNeverShown() throws {
        let e = try #require(error(["DARI_BRIDGE_WEBHOOK_SECRETT": "whsec-Zk81-not-shown", "DARI_BRIDGE_AMQP_PASSWORD": "Pw-Qx7-not-shown"]))
        #expect(e.message.contains("DARI_BRIDGE_AMQP_PASSWORD") && e.message.contains("DARI_BRIDGE_WEBHOOK_SECRETT"), "\(e.message)")
        #expect(!e.message.contains("not-shown"), "\(e.message)")
    }

    @Test func theOldTestVariablesAreUnknownNow() throws {
        for name in ["DARI_BRIDGE_TEST_AMQP_URL", "DARI_BRIDGE_TEST_RABBIT_PORT", "DARI_BRIDGE_CLUSTER_PORTS", "DARI_BRIDGE_BINARY", "DARI_BRIDGE_FUZZ_SECONDS"] {
            let e = try #require(error([name: "x"]), "\(name)")
            #expect(e.message.contains(name))
        }
    }

    @Test func otherPrefixesAndKubernetesServiceLinksPass() throws {
        let c = try Configuration.load(arguments: [], environment: [
            "DARI_TEST_AMQP_URL": "amqp://h/", "PATH": "/bin", "DARI_BRIDGEX": "1", "dari_bridge_concurency": "8",
            "DARI_BRIDGE_SERVICE_HOST": "10.0.0.1", "DARI_BRIDGE_SERVICE_PORT": "9464", "DARI_BRIDGE_SERVICE_PORT_METRICS": "9464",
            "DARI_BRIDGE_PORT": "tcp://10.0.0.1:9464", "DARI_BRIDGE_PORT_9464_TCP": "tcp://10.0.0.1:9464",
            "DARI_BRIDGE_PORT_9464_TCP_PROTO": "tcp", "DARI_BRIDGE_PORT_9464_TCP_PORT": "9464", "DARI_BRIDGE_PORT_9464_TCP_ADDR": "10.0.0.1",
            "DARI_BRIDGE_CONCURRENCY": "8",
        ])
        #expect(c.concurrency == 8)
        for name in ["DARI_BRIDGE_PORT_X_TCP", "DARI_BRIDGE_PORT_9464_TCPX", "DARI_BRIDGE_PORT_9464_TCP_HOST", "DARI_BRIDGE_SERVICE", "DARI_BRIDGE_"] {
            #expect(error([name: "1"]) != nil, "\(name) accepted")
        }
    }

    @Test func aHostileNameIsEscaped() throws {
        let e = try #require(error(["DARI_BRIDGE_X\n\u{1b}[31mY": "1"]))
        #expect(!e.message.contains("\n") && !e.message.contains("\u{1b}"), "\(e.message.debugDescription)")
    }

    @Test func noSuggestionWhenNothingIsNear() throws {
        let e = try #require(error(["DARI_BRIDGE_SOMETHING_ELSE_ENTIRELY": "1"]))
        #expect(!e.message.contains("did you mean"), "\(e.message)")
    }
}
