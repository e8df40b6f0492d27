// libFuzzer target: the message decoder and the JSON scanner (scripts/fuzz.sh builds it
// with Sources/DariBridge/{JSONScanner,JSONWriter,ResumeRequest,ASCIITrim}.swift).
// Properties: no crash; the scanner and the decoder agree on validity; what the decoder
// accepts is spliced back into a body that decodes to the same request.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let valid = JSONScanner.isValid(bytes)
    if let document = try? JSONScanner.scan(bytes) {
        if !valid { fatalError("scan succeeded on bytes isValid rejects") }
        _ = document
    } else if valid {
        fatalError("isValid accepted bytes scan rejects")
    }
    _ = JSONScanner.firstInvalidUTF8Offset(bytes)
    _ = try? JSONScanner.decodeString(bytes)
    switch ResumeRequestDecoder.decode(bytes, maxBytes: 1 << 20) {
    case .success(let request):
        if !valid { fatalError("decoder accepted invalid JSON") }
        if !JSONScanner.isValid(request.variablesJSON) { fatalError("variables are not valid JSON") }
        let again = ResumeRequest.messageBody(resumeURL: request.resumeURL, variablesJSON: request.variablesJSON)
        guard case .success(let second) = ResumeRequestDecoder.decode(again, maxBytes: 1 << 21) else {
            fatalError("re-encoded request does not decode")
        }
        if second.resumeURL != request.resumeURL || second.variablesJSON != request.variablesJSON {
            fatalError("re-encoded request decodes differently")
        }
        _ = request.httpBody()
    case .failure(let invalid):
        if invalid.detail.isEmpty { fatalError("empty invalid_message detail") }
    }
    return 0
}
