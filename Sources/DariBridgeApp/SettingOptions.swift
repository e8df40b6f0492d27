import ArgumentParser

/// The settings table (`Configuration.settings`) as swift-argument-parser
/// options, so that `--help`, the completion scripts and the "unknown option"
/// errors know every setting without a second list of them.
///
/// The argument parser finds a command's options by reflecting an instance of
/// the type (`Mirror(reflecting:)`), which honours `CustomReflectable`: the
/// mirror below holds one `Option<String?>` per row of the table, and
/// `init(from:)` decodes each by the same key. Each option's value name is its
/// environment variable, so the help reads `--concurrency <DARI_BRIDGE_CONCURRENCY>`
/// (and a missing value names the variable too). Values stay strings here:
/// the table parses and checks them, after the environment, in
/// `Configuration.load(flags:environment:)`.
package struct SettingOptions: ParsableArguments, CustomReflectable {
    /// The values given on the command line, by environment name (the last of a repeated flag wins).
    package var values: [String: String] = [:]

    package init() {}

    package var customMirror: Mirror {
        Mirror(self, children: Configuration.settings.map { (label: Optional($0.name), value: Self.option(for: $0) as Any) }, displayStyle: .struct)
    }

    static func option(for setting: Setting) -> Option<String?> {
        let help = ArgumentHelp("\(setting.help) (default: \(setting.defaultText))", valueName: setting.env)
        let completion: CompletionKind? = switch setting.completion {
        case .none: nil
        case .file: .file()
        case .choices(let words): .list(words)
        }
        if setting.isSwitch {
            return Option(wrappedValue: nil, name: .customLong(setting.name), defaultAsFlag: "true", parsing: .next, help: help, completion: completion)
        }
        return Option(wrappedValue: nil, name: .customLong(setting.name), help: help, completion: completion)
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        for setting in Configuration.settings {
            if let value = try container.decode(Option<String?>.self, forKey: Key(stringValue: setting.name)).wrappedValue {
                values[setting.env] = value
            }
        }
    }

    /// Parses settings flags alone (as `Configuration.load(arguments:environment:)` takes them).
    static func parseSettings(_ arguments: [String]) throws(ConfigurationError) -> SettingOptions {
        do {
            return try parse(arguments)
        } catch {
            throw ConfigurationError(message: oneLine(message(for: error)))
        }
    }
}

/// An argument-parser message on one line (control characters as spaces).
func oneLine(_ message: String) -> String {
    String(message.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? " " : Character($0) })
}
