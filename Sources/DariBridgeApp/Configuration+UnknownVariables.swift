/// `DARI_BRIDGE_*` belongs to the worker: a variable with that prefix that no
/// setting reads is a typo or a setting of another version (`DARI_BRIDGE_CONCURENCY=8`
/// would otherwise leave the default in force without a word).
extension Configuration {
    static let environmentPrefix = "DARI_BRIDGE_"

    static func checkForUnknownVariables(_ environment: [String: String]) throws(ConfigurationError) {
        let known = Set(settings.map(\.env))
        let unknown = environment.keys
            .filter { $0.hasPrefix(environmentPrefix) && !known.contains($0) && !isKubernetesServiceLink($0) }
            .sorted()
        guard let first = unknown.first else { return }
        var message = "unknown environment variable \(first.printable)"
        if let near = closestSetting(to: first) { message += " (did you mean \(near)?)" }
        if unknown.count > 1 {
            message += "; also " + unknown.dropFirst().prefix(5).map(\.printable).joined(separator: ", ") + (unknown.count > 6 ? ", ..." : "")
        }
        throw ConfigurationError(message: message + "; the settings are listed by dari-bridge run --help")
    }

    /// Kubernetes injects `<SERVICE>_SERVICE_HOST`, `<SERVICE>_SERVICE_PORT[_<name>]`,
    /// `<SERVICE>_PORT` and `<SERVICE>_PORT_<n>_<proto>[_PROTO|_PORT|_ADDR]` for every
    /// Service in the namespace (unless `enableServiceLinks: false`): a Service named
    /// `dari-bridge` gives `DARI_BRIDGE_SERVICE_HOST` and friends. No setting has
    /// these names, so they are let through.
    static func isKubernetesServiceLink(_ name: String) -> Bool {
        let rest = name.dropFirst(environmentPrefix.count)
        if rest == "SERVICE_HOST" || rest == "SERVICE_PORT" || rest.hasPrefix("SERVICE_PORT_") || rest == "PORT" { return true }
        let parts = rest.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3 || parts.count == 4, parts[0] == "PORT", !parts[1].isEmpty, parts[1].allSatisfy(\.isASCIIDigit),
              ["TCP", "UDP", "SCTP"].contains(parts[2]) else { return false }
        return parts.count == 3 || ["PROTO", "PORT", "ADDR"].contains(parts[3])
    }

    /// The known name within two edits of `name`, if exactly one is the nearest.
    static func closestSetting(to name: String) -> String? {
        let candidates = settings.map(\.env).filter { $0.hasPrefix(environmentPrefix) }
            .map { ($0, editDistance(Array(name.utf8), Array($0.utf8), limit: 2)) }
            .filter { $0.1 <= 2 }
        guard let best = candidates.map(\.1).min() else { return nil }
        let nearest = candidates.filter { $0.1 == best }
        return nearest.count == 1 ? nearest[0].0 : nil
    }

    /// Levenshtein distance, cut off above `limit` (names are short; the rows stay small).
    static func editDistance(_ a: [UInt8], _ b: [UInt8], limit: Int) -> Int {
        if abs(a.count - b.count) > limit { return limit + 1 }
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = Swift.min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
