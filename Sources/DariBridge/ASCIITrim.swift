/// ASCII whitespace trimming without Foundation's `CharacterSet` (not in FoundationEssentials; the
/// worker keeps full Foundation, and its ICU data, out of the binary). HTTP header values and our
/// comma-list settings only ever carry ASCII optional whitespace.
extension String {
    /// The UTF-8 bytes with leading and trailing space, tab, CR, LF, VT and FF removed.
    var asciiTrimmedBytes: [UInt8] {
        let bytes = Array(utf8)
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) }
        guard let first = bytes.firstIndex(where: { !isSpace($0) }),
              let last = bytes.lastIndex(where: { !isSpace($0) }) else { return [] }
        return Array(bytes[first...last])
    }
}
