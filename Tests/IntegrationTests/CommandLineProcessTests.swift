import Foundation
import Testing

/// The built executable's command line: unknown variables, help, completion.
@Suite(.serialized) struct CommandLineProcessTests {
    func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32?, output: String) {
        let p = try WorkerProcess(arguments: arguments, environment: environment)
        let status = await p.waitForExit(timeout: .seconds(10))
        return (status, p.log)
    }

    @Test func anUnknownVariableExitsTwoNamingIt() async throws {
        let (status, output) = try await run(["run"], environment: ["DARI_BRIDGE_CONCURENCY": "8"])
        #expect(status == 2)
        #expect(output.split(separator: "\n").count == 1, "\(output)")
        #expect(output.contains("DARI_BRIDGE_CONCURENCY") && output.contains("did you mean DARI_BRIDGE_CONCURRENCY?"), "\(output)")
        let publish = try await run(["publish", "https://api.usedari.com/public/send-user-signal/x"], environment: ["DARI_BRIDGE_QUEUE_NAME": "q"])
        #expect(publish.status == 2 && publish.output.contains("DARI_BRIDGE_QUEUE_NAME"), "\(publish.output)")
    }

    @Test func anUnknownFlagOrCommandExitsTwoOnOneLine() async throws {
        for args in [["run", "--concurency", "8"], ["frobnicate"], ["publish"]] {
            let (status, output) = try await run(args)
            #expect(status == 2, "\(args)")
            #expect(output.split(separator: "\n").count == 1, "\(args): \(output)")
        }
    }

    @Test func versionAndRunHelp() async throws {
        let version = try await run(["--version"])
        #expect(version.status == 0 && version.output.hasPrefix("dari-bridge "), "\(version.output)")
        let help = try await run(["run", "--help"])
        #expect(help.status == 0)
        for flag in ["--amqp-url <AMQP_URL>", "--concurrency <DARI_BRIDGE_CONCURRENCY>", "--log-format <DARI_BRIDGE_LOG_FORMAT>"] {
            #expect(help.output.contains(flag), "\(flag)")
        }
    }

    /// The bash completion script, loaded into a real bash and asked to
    /// complete `dari-bridge run --conc`, `dari-bridge pu` and a setting's value.
    @Test func bashCompletionCompletesSettingsAndSubcommands() async throws {
        let (status, script) = try await run(["--generate-completion-script", "bash"])
        #expect(status == 0)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("dari-bridge-completion-\(UUID().uuidString.prefix(8)).bash")
        try script.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        func complete(_ words: [String]) throws -> [String] {
            let driver = """
            source '\(file.path)'
            COMP_WORDS=(\(words.map { "'\($0)'" }.joined(separator: " ")))
            COMP_CWORD=\(words.count - 1)
            COMP_LINE='\(words.joined(separator: " "))'
            COMP_POINT=${#COMP_LINE}
            COMPREPLY=()
            fn=$(complete -p dari-bridge | sed -E 's/.* -F ([^ ]+) .*/\\1/')
            "$fn" dari-bridge '\(words.last!)' '\(words.dropLast().last!)'
            printf '%s\\n' "${COMPREPLY[@]}"
            """
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = ["--norc", "--noprofile", "-c", driver]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        let settings = try complete(["dari-bridge", "run", "--conc"])
        #expect(settings.contains("--concurrency"), "\(settings)")
        let commands = try complete(["dari-bridge", "pu"])
        #expect(commands.contains("publish"), "\(commands)")
        let publish = try complete(["dari-bridge", "publish", "--variables-j"])
        #expect(publish.contains("--variables-json"), "\(publish)")
        let format = try complete(["dari-bridge", "run", "--log-format", ""])
        #expect(format.contains("json") && format.contains("text"), "\(format)")
        let level = try complete(["dari-bridge", "run", "--log-level", "wa"])
        #expect(level == ["warning"], "\(level)")
    }
}
