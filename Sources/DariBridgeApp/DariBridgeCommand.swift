import ArgumentParser
import DariBridge

/// `dari-bridge`: the root command. `run` is the default subcommand, so
/// `dari-bridge --concurrency 8` is `dari-bridge run --concurrency 8`.
/// `--help`, `--version`, `help <command>` and
/// `--generate-completion-script bash|zsh|fish` come from swift-argument-parser.
package struct DariBridgeCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "dari-bridge",
        abstract: "Resume Dari workflows from RabbitMQ.",
        discussion: """
        Settings of run and publish, each a flag and the environment variable in <...> \
        (a flag wins; an unknown DARI_BRIDGE_* variable is an error); \
        `dari-bridge run --help` describes each:

        \(Configuration.settingsSummary)
        """,
        version: "dari-bridge \(DariBridgeVersion.current)",
        subcommands: [RunCommand.self, PublishCommand.self],
        defaultSubcommand: RunCommand.self)

    package init() {}
}

/// `dari-bridge run`: consume resume requests until SIGTERM/SIGINT.
package struct RunCommand: ParsableCommand {
    package static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Consume resume requests until SIGTERM/SIGINT, then drain and exit 0 (the default command).",
        usage: "dari-bridge [run] [--<setting> <value> ...]",
        discussion: "Every option is also an environment variable, named in <...>; a flag wins over the environment.")

    @OptionGroup(title: "Settings") package var settings: SettingOptions

    package init() {}
}

extension Configuration {
    /// The settings as lines of the root command's help, from the table.
    static var settingsSummary: String {
        settings.map { "  \($0.flag) <\($0.env)>" }.joined(separator: "\n")
    }
}
