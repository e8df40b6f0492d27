/// A validated resume request: where to POST and the `variables` object to forward byte-for-byte.
package struct ResumeRequest: Sendable, Equatable {
    package var resumeURL: String
    /// The raw bytes of the `variables` object exactly as received.
    package var variablesJSON: [UInt8]
    /// Top-level keys of `variables`, in document order (for logs; never log values). Scanned
    /// when asked for (a debug line), not for every message: a second scan of the object
    /// cost about 8,000 instructions a message for a count that is rarely written.
    package var variableKeys: [String] {
        (try? JSONScanner.scan(variablesJSON).members.map(\.key)) ?? []
    }
    /// What the URL policy approved for `resumeURL`, once the pipeline checked it: the
    /// transport sends exactly this without approving the URL a second time.
    package var approved: ApprovedURL? = nil

    package init(resumeURL: String, variablesJSON: [UInt8]) {
        self.resumeURL = resumeURL
        self.variablesJSON = variablesJSON
    }

    /// Exactly `{"variables":` + variablesJSON + `}`.
    package func httpBody() -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(variablesJSON.count + 14)
        body.append(contentsOf: #"{"variables":"#.utf8)
        body.append(contentsOf: variablesJSON)
        body.append(UInt8(ascii: "}"))
        return body
    }
}

/// Why a message cannot be processed (it will never succeed, so it is not retried).
package struct InvalidMessage: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, e.g. "missing field resume_workflow_url".
    package var detail: String
    /// The resume URL, when it could be read despite the error.
    package var resumeURL: String?

    package init(detail: String, resumeURL: String? = nil) {
        self.detail = detail
        self.resumeURL = resumeURL
    }

    package var description: String { detail }
}

package enum ResumeRequestDecoder {
    static let urlField = "resume_workflow_url"
    static let urlAlias = "resume_url"
    static let variablesField = "variables"

    /// Decodes a message body `{"resume_workflow_url": "...", "variables": {...}, ...}`.
    /// `resume_url` is accepted as an alias; if both are present they must be equal. A URL field or
    /// `variables` appearing more than once is rejected. Unknown top-level keys are ignored.
    /// The URL itself is not validated here.
    package static func decode(_ body: [UInt8], maxBytes: Int) -> Result<ResumeRequest, InvalidMessage> {
        if body.count > maxBytes {
            return .failure(InvalidMessage(detail: "message body is \(body.count) bytes, over the limit of \(maxBytes)"))
        }
        if body.isEmpty { return .failure(InvalidMessage(detail: "message body is empty")) }

        let document: JSONDocument
        do {
            document = try JSONScanner.scan(body)
        } catch {
            if let offset = error.kind == .invalidUTF8 ? error.offset : JSONScanner.firstInvalidUTF8Offset(body) {
                return .failure(InvalidMessage(detail: "body is not valid UTF-8: invalid byte sequence at byte \(offset)"))
            }
            return .failure(InvalidMessage(detail: "body is not valid JSON: \(error)"))
        }
        guard document.kind == .object else {
            return .failure(InvalidMessage(detail: "body must be a JSON object, got \(document.kind.rawValue)"))
        }

        let urlMembers = document.members.filter { $0.key == urlField }
        let aliasMembers = document.members.filter { $0.key == urlAlias }
        // The first readable URL (canonical field first), reported even when the message is invalid.
        let readableURL = (urlMembers + aliasMembers).lazy.compactMap { string(body, $0) }.first { !$0.isEmpty }
        func invalid(_ detail: String) -> Result<ResumeRequest, InvalidMessage> {
            .failure(InvalidMessage(detail: detail, resumeURL: readableURL))
        }

        if urlMembers.count > 1 { return invalid("duplicate field \(urlField)") }
        if aliasMembers.count > 1 { return invalid("duplicate field \(urlAlias)") }
        var urls: [String] = []
        for member in urlMembers + aliasMembers {
            guard let url = string(body, member) else {
                return invalid("\(member.key) must be a string, got \(member.kind.rawValue)")
            }
            if url.isEmpty { return invalid("\(member.key) must not be empty") }
            urls.append(url)
        }
        guard let resumeURL = urls.first else { return invalid("missing field \(urlField)") }
        if urls.count == 2 && urls[0] != urls[1] {
            return invalid("\(urlField) and \(urlAlias) are both present and differ")
        }

        let variablesMembers = document.members.filter { $0.key == variablesField }
        guard let variables = variablesMembers.first else { return invalid("missing field \(variablesField)") }
        if variablesMembers.count > 1 { return invalid("duplicate field \(variablesField)") }
        guard variables.kind == .object else {
            return invalid("\(variablesField) must be a JSON object, got \(variables.kind.rawValue)")
        }
        return .success(ResumeRequest(resumeURL: resumeURL, variablesJSON: Array(body[variables.valueRange])))
    }

    /// The decoded value of a string member, or nil if it is not a string.
    private static func string(_ body: [UInt8], _ member: JSONMember) -> String? {
        guard member.kind == .string else { return nil }
        return try? JSONScanner.decodeString(body, literal: member.valueRange)
    }
}

extension ResumeRequest {
    /// An input message body, as publishers send it (used by `dari-bridge publish`
    /// and the benchmark). `variablesJSON` must be a JSON object; it is spliced unchanged.
    package static func messageBody(resumeURL: String, variablesJSON: [UInt8]) -> [UInt8] {
        var w = JSONWriter(capacity: 64 + resumeURL.utf8.count + variablesJSON.count)
        w.raw("{\"resume_workflow_url\":")
        w.string(resumeURL)
        w.raw(",\"variables\":")
        w.raw(variablesJSON)
        w.raw("}")
        return w.bytes
    }

    /// A JSON object of string variables, in the order given.
    package static func stringVariablesJSON(_ pairs: [(String, String)]) -> [UInt8] {
        var w = JSONWriter(capacity: 64)
        w.raw("{")
        for (n, (k, v)) in pairs.enumerated() {
            if n > 0 { w.raw(",") }
            w.string(k)
            w.raw(":")
            w.string(v)
        }
        w.raw("}")
        return w.bytes
    }
}
