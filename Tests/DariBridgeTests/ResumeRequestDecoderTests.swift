import Testing
@testable import DariBridge

private let limit = 1 << 20

private func decode(_ body: String, maxBytes: Int = limit) -> Result<ResumeRequest, InvalidMessage> {
    ResumeRequestDecoder.decode(Array(body.utf8), maxBytes: maxBytes)
}

private func invalid(_ result: Result<ResumeRequest, InvalidMessage>) -> InvalidMessage? {
    if case .failure(let error) = result { return error }
    return nil
}

@Suite struct ResumeRequestDecoderTests {
    @Test func decodesValidMessage() throws {
        let body = #"{"resume_workflow_url":"https://dari.example/resume/abc","variables":{"b":1,"a":"x"},"extra":[1]}"#
        let request = try decode(body).get()
        #expect(request.resumeURL == "https://dari.example/resume/abc")
        #expect(request.variableKeys == ["b", "a"])
        #expect(String(decoding: request.variablesJSON, as: UTF8.self) == #"{"b":1,"a":"x"}"#)
        #expect(String(decoding: request.httpBody(), as: UTF8.self) == #"{"variables":{"b":1,"a":"x"}}"#)
    }

    @Test func acceptsAliasAndEqualDuplicateSpelling() throws {
        let alias = try decode(#"{"resume_url":"https://a/r","variables":{}}"#).get()
        #expect(alias.resumeURL == "https://a/r")
        #expect(alias.variableKeys.isEmpty)
        #expect(alias.httpBody() == Array(#"{"variables":{}}"#.utf8))
        let both = try decode(#"{"resume_url":"https://a/r","resume_workflow_url":"https://a/r","variables":{}}"#).get()
        #expect(both.resumeURL == "https://a/r")
        let escaped = try decode(#"{"resume_workflow_url":"https:\/\/a\/r","variables":{}}"#).get()
        #expect(escaped.resumeURL == "https://a/r")
    }

    @Test func forwardsVariablesByteForByte() throws {
        let variables = """
        {"big":12345678901234567890,"tiny":1e-7,"tenth":0.1,"long":3.1415926535897932384626433832795028,\
        "neg":-0.0,"exp":1E+400,"text":"caf\\u00e9 é 😀 日本","esc":"a\\"b\\\\c\\/d\\n","emoji":"\\ud83d\\ude00",
          "nested" : { "z" : [ 1 , { "y" : null } , [ ] ] , "a" : true },
        "zzz":false, "aaa":[]}
        """
        let body = "{ \"variables\" : \(variables) ,\n\"resume_workflow_url\":\"https://d/r\" }"
        let request = try decode(body).get()
        #expect(request.variablesJSON == Array(variables.utf8))
        #expect(request.httpBody() == Array("{\"variables\":\(variables)}".utf8))
        #expect(request.variableKeys == ["big", "tiny", "tenth", "long", "neg", "exp", "text", "esc", "emoji", "nested", "zzz", "aaa"])
        let text = String(decoding: request.httpBody(), as: UTF8.self)
        for fragment in ["12345678901234567890", "1e-7", "0.1", "3.1415926535897932384626433832795028", "\\u00e9", "😀", "1E+400"] {
            #expect(text.contains(fragment), "missing \(fragment)")
        }
    }

    @Test func rejectsOversizedBody() throws {
        let body = #"{"resume_url":"https://a/r","variables":{}}"#
        #expect((try? decode(body, maxBytes: body.utf8.count).get()) != nil)
        let error = try #require(invalid(decode(body, maxBytes: 10)))
        #expect(error.detail == "message body is \(body.utf8.count) bytes, over the limit of 10")
        #expect(error.resumeURL == nil)
        let oneOver = try #require(invalid(decode(body, maxBytes: body.utf8.count - 1)))
        #expect(oneOver.detail == "message body is \(body.utf8.count) bytes, over the limit of \(body.utf8.count - 1)")
    }

    @Test func rejectsEmptyBody() throws {
        #expect(try #require(invalid(decode(""))).detail == "message body is empty")
        #expect(try #require(invalid(decode("  \n"))).detail.hasPrefix("body is not valid JSON: "))
    }

    @Test(arguments: [
        "not json", "{\"resume_url\":\"https://a/r\",\"variables\":{}", "{\"resume_url\":\"https://a/r\",\"variables\":{}} x",
        "{\"resume_url\":\"https://a/r\",\"variables\":{},}", "{\"resume_url\":'https://a/r'}", "{\"variables\":{\"a\":01}}",
    ])
    func rejectsMalformedJSON(_ body: String) throws {
        let error = try #require(invalid(decode(body)))
        #expect(error.detail.hasPrefix("body is not valid JSON: invalid JSON at byte "), "\(error.detail)")
        #expect(error.resumeURL == nil)
    }

    @Test func reportsWhereJSONIsBroken() throws {
        let error = try #require(invalid(decode(#"{"resume_url":"x" "variables":{}}"#)))
        #expect(error.detail == "body is not valid JSON: invalid JSON at byte 18: expected ',' or '}', found '\"'")
    }

    @Test func rejectsInvalidUTF8() throws {
        var inString = Array(#"{"resume_url":"https://a/r","variables":{"k":"v"}}"#.utf8)
        inString.insert(0xFF, at: 46)
        let a = try #require(invalid(ResumeRequestDecoder.decode(inString, maxBytes: limit)))
        #expect(a.detail.hasPrefix("body is not valid UTF-8"), "\(a.detail)")
        #expect(a.detail.contains("byte 46"), "\(a.detail)")
        // A syntax error before the bad byte must not hide that the body is not UTF-8.
        let b = try #require(invalid(ResumeRequestDecoder.decode(Array("{x".utf8) + [0xC3], maxBytes: limit)))
        #expect(b.detail == "body is not valid UTF-8: invalid byte sequence at byte 2")
        let c = try #require(invalid(ResumeRequestDecoder.decode([0xFE, 0xFF], maxBytes: limit)))
        #expect(c.detail.hasPrefix("body is not valid UTF-8"))
    }

    @Test(arguments: [("[1,2]", "array"), ("\"s\"", "string"), ("42", "number"), ("true", "bool"), ("null", "null")])
    func rejectsNonObjectTopLevel(_ body: String, _ kind: String) throws {
        let error = try #require(invalid(decode(body)))
        #expect(error.detail == "body must be a JSON object, got \(kind)")
    }

    @Test func rejectsTooDeepNesting() throws {
        let deep = String(repeating: "[", count: 70) + String(repeating: "]", count: 70)
        let error = try #require(invalid(decode(#"{"resume_url":"https://a/r","variables":{"d":\#(deep)}}"#)))
        #expect(error.detail.hasPrefix("body is not valid JSON: invalid JSON at byte "))
        #expect(error.detail.hasSuffix("nesting deeper than 64 levels"))
    }

    @Test(arguments: [
        (#"{"variables":{}}"#, "missing field resume_workflow_url", nil),
        (#"{"resume_workflow_url":null,"variables":{}}"#, "resume_workflow_url must be a string, got null", nil),
        (#"{"resume_workflow_url":42,"variables":{}}"#, "resume_workflow_url must be a string, got number", nil),
        (#"{"resume_url":{"u":"x"},"variables":{}}"#, "resume_url must be a string, got object", nil),
        (#"{"resume_workflow_url":"","variables":{}}"#, "resume_workflow_url must not be empty", nil),
        (#"{"resume_workflow_url":"","resume_url":"https://a/r","variables":{}}"#,
         "resume_workflow_url must not be empty", "https://a/r"),
        (#"{"resume_workflow_url":["https://a/r"],"resume_url":"https://b/r","variables":{}}"#,
         "resume_workflow_url must be a string, got array", "https://b/r"),
        (#"{"resume_workflow_url":"https://a/r","resume_url":"https://b/r","variables":{}}"#,
         "resume_workflow_url and resume_url are both present and differ", "https://a/r"),
        (#"{"resume_url":"https://b/r","resume_workflow_url":"https://a/r","variables":{}}"#,
         "resume_workflow_url and resume_url are both present and differ", "https://a/r"),
        (#"{"resume_workflow_url":"https://a/r","resume_workflow_url":"https://a/r","variables":{}}"#,
         "duplicate field resume_workflow_url", "https://a/r"),
        (#"{"resume_url":"https://a/r","resume_url":"https://b/r","variables":{}}"#,
         "duplicate field resume_url", "https://a/r"),
        (#"{"resume_workflow_url":"https://a/r"}"#, "missing field variables", "https://a/r"),
        (#"{"resume_workflow_url":"https://a/r","variables":{},"variables":{}}"#, "duplicate field variables", "https://a/r"),
        (#"{"resume_workflow_url":"https://a/r","variables":[1]}"#, "variables must be a JSON object, got array", "https://a/r"),
        (#"{"resume_workflow_url":"https://a/r","variables":"{}"}"#, "variables must be a JSON object, got string", "https://a/r"),
        (#"{"resume_workflow_url":"https://a/r","variables":null}"#, "variables must be a JSON object, got null", "https://a/r"),
        (#"{"resume_workflow_url":"https://a/r","variables":7}"#, "variables must be a JSON object, got number", "https://a/r"),
        (#"{"resume_workflow_url":"https://a/r","variables":false}"#, "variables must be a JSON object, got bool", "https://a/r"),
    ] as [(String, String, String?)])
    func rejectsBadFields(_ body: String, _ detail: String, _ url: String?) throws {
        let error = try #require(invalid(decode(body)))
        #expect(error.detail == detail)
        #expect(error.resumeURL == url)
    }

    @Test func urlIsNotValidatedHere() throws {
        let request = try decode(#"{"resume_workflow_url":"not a url \u0000","variables":{}}"#).get()
        #expect(request.resumeURL == "not a url \u{0}")
    }

    @Test func ignoresUnknownKeysAndKeepsDuplicateVariableKeys() throws {
        let request = try decode(#"{"x":{"variables":1},"resume_url":"u","y":null,"variables":{"k":1,"k":2}}"#).get()
        #expect(request.variableKeys == ["k", "k"])
        #expect(request.variablesJSON == Array(#"{"k":1,"k":2}"#.utf8))
    }
}
