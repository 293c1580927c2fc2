import ServalCore

/// A cursor over JSON text that reads values straight from the bytes, without building a document.
///
/// Strict RFC 8259 syntax, except that `NaN`, `Infinity` and `-Infinity` are numbers, as Python's `json` module
/// writes them. Strings are checked to be UTF-8 with valid escapes. Containers nest at most ``maxDepth`` deep, so
/// hostile input cannot exhaust the stack of the few recursive readers.
///
/// The scanner only lives inside `withUnsafeReadableBytes` of the buffer it reads.
struct JSONScanner {
    /// How deeply objects and arrays may nest.
    static let maxDepth = 64

    /// The JSON text.
    let bytes: UnsafeRawBufferPointer
    /// The offset of the next byte to read.
    var position = 0
    /// How many containers are open.
    var depth = 0

    /// Creates a scanner at the start of `bytes`.
    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    // MARK: Bytes and errors

    /// Skips JSON whitespace.
    @inline(__always)
    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    /// The next byte after whitespace, not consumed; throws at the end of the text.
    @inline(__always)
    mutating func peek(expecting expected: @autoclosure () -> String) throws(ServalError) -> UInt8 {
        skipWhitespace()
        guard position < bytes.count else { throw syntaxError(expecting: expected()) }
        return bytes[position]
    }

    /// Whether only whitespace remains.
    mutating func isAtEnd() -> Bool {
        skipWhitespace()
        return position >= bytes.count
    }

    /// The error for unexpected text at the current position.
    func syntaxError(expecting expected: String) -> ServalError {
        guard position < bytes.count else {
            return ServalError(
                .validationError,
                "The request's JSON ends early: expected \(expected) at byte \(position). Check that the body is "
                    + "complete and, with binary data, that Inference-Header-Content-Length is the JSON's length.")
        }
        return ServalError(
            .validationError,
            "The request's JSON is malformed at byte \(position): expected \(expected), found \(describeByte(bytes[position]))."
        )
    }

    private func describeByte(_ byte: UInt8) -> String {
        switch byte {
        case 0x21...0x7E: "'\(Character(Unicode.Scalar(byte)))'"
        default: "byte 0x\(String(byte, radix: 16, uppercase: true))"
        }
    }

    /// A short description of the value at the current position, for messages: its kind, and its text when it
    /// is short.
    mutating func describeValue() -> String {
        skipWhitespace()
        guard position < bytes.count else { return "missing" }
        let start = position
        let kind: String
        switch bytes[start] {
        case UInt8(ascii: "{"): return "an object"
        case UInt8(ascii: "["): return "an array"
        case UInt8(ascii: "\""): kind = "the string"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): kind = "the boolean"
        case UInt8(ascii: "n"): return "null"
        default: kind = "the number"
        }
        var end = start + 1
        if bytes[start] == UInt8(ascii: "\"") {
            while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
                end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1
            }
            end = min(end + 1, bytes.count)
        } else {
            while end < bytes.count, !Self.isDelimiter(bytes[end]) { end += 1 }
        }
        let limit = 40
        let text = String(
            decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<min(end, start + limit)]), as: UTF8.self)
        return "\(kind) \(text)\(end - start > limit ? "…" : "")"
    }

    private static func isDelimiter(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x20, 0x0A, 0x0D, 0x09, UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"), UInt8(ascii: ":"): true
        default: false
        }
    }

    // MARK: Containers

    /// Opens a container: counts its depth.
    @inline(__always)
    private mutating func enterContainer() throws(ServalError) {
        depth += 1
        guard depth <= Self.maxDepth else {
            throw ServalError(
                .validationError,
                "The request's JSON nests objects and arrays more than \(Self.maxDepth) deep (at byte \(position)); "
                    + "flatten the data.")
        }
    }

    /// Consumes `{`; returns whether the object has members (an empty object is consumed whole). `what` names the
    /// value in the type error, e.g. `"parameters"`.
    mutating func beginObject(_ what: @autoclosure () -> String) throws(ServalError) -> Bool {
        try beginContainer(open: UInt8(ascii: "{"), close: UInt8(ascii: "}"), kind: "object", firstItem: "a key in quotes", what())
    }

    /// Reads a member's key and the `:` after it.
    mutating func readKey() throws(ServalError) -> JSONString {
        guard try peek(expecting: "a key in quotes") == UInt8(ascii: "\"") else {
            throw syntaxError(expecting: "a key in quotes")
        }
        let key = try readString()
        guard try peek(expecting: "':'") == UInt8(ascii: ":") else { throw syntaxError(expecting: "':'") }
        position += 1
        return key
    }

    /// After a member's value: consumes `,` and returns true, or consumes `}` and returns false.
    mutating func nextMember() throws(ServalError) -> Bool {
        try nextItem(close: UInt8(ascii: "}"))
    }

    /// Consumes `[`; returns whether the array has elements (an empty array is consumed whole).
    mutating func beginArray(_ what: @autoclosure () -> String) throws(ServalError) -> Bool {
        try beginContainer(open: UInt8(ascii: "["), close: UInt8(ascii: "]"), kind: "array", firstItem: "a value", what())
    }

    /// After an element: consumes `,` and returns true, or consumes `]` and returns false.
    @inline(__always)
    mutating func nextElement() throws(ServalError) -> Bool {
        try nextItem(close: UInt8(ascii: "]"))
    }

    /// Consumes `open`; returns whether the container has items (an empty one is consumed whole).
    @inline(__always)
    private mutating func beginContainer(
        open: UInt8, close: UInt8, kind: String, firstItem: String, _ what: @autoclosure () -> String
    ) throws(ServalError) -> Bool {
        guard try peek(expecting: "\(what()) (an \(kind))") == open else {
            throw ServalError(.validationError, "\(what()) must be a JSON \(kind), not \(describeValue()).")
        }
        position += 1
        try enterContainer()
        guard try peek(expecting: "\(firstItem) or '\(Character(Unicode.Scalar(close)))'") != close else {
            position += 1
            depth -= 1
            return false
        }
        return true
    }

    /// After an item: consumes `,` and returns true, or consumes `close` (leaving the container) and returns false.
    @inline(__always)
    private mutating func nextItem(close: UInt8) throws(ServalError) -> Bool {
        switch try peek(expecting: "',' or '\(Character(Unicode.Scalar(close)))'") {
        case UInt8(ascii: ","):
            position += 1
            return true
        case close:
            position += 1
            depth -= 1
            return false
        default:
            throw syntaxError(expecting: "',' or '\(Character(Unicode.Scalar(close)))'")
        }
    }

    /// Consumes `[` inside an array being flattened (see ``decodeTensorData``).
    @inline(__always)
    mutating func enterNestedArray() throws(ServalError) {
        position += 1
        try enterContainer()
    }

    /// Consumes `]` of an array being flattened.
    @inline(__always)
    mutating func leaveNestedArray() {
        position += 1
        depth -= 1
    }

    /// Skips one value of any kind, checking its syntax.
    mutating func skipValue() throws(ServalError) {
        switch try peek(expecting: "a value") {
        case UInt8(ascii: "{"):
            if try beginObject("a value") {
                repeat {
                    _ = try readKey()
                    try skipValue()
                } while try nextMember()
            }
        case UInt8(ascii: "["):
            if try beginArray("a value") {
                repeat { try skipValue() } while try nextElement()
            }
        case UInt8(ascii: "\""):
            _ = try readString()
        case UInt8(ascii: "t"):
            try readLiteral("true")
        case UInt8(ascii: "f"):
            try readLiteral("false")
        case UInt8(ascii: "n"):
            try readLiteral("null")
        default:
            _ = try scanNumber()
        }
    }

    // MARK: Literals

    /// Consumes `literal` (`true`, `false`, `null`, `NaN`, `Infinity`) or throws.
    mutating func readLiteral(_ literal: StaticString) throws(ServalError) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else {
            position = bytes.count
            throw syntaxError(expecting: "\(literal)")
        }
        let text = literal.utf8Start
        for offset in 0..<count where bytes[position + offset] != text[offset] {
            throw syntaxError(expecting: "\(literal)")
        }
        position += count
    }

    /// Reads `true` or `false`.
    mutating func readBool(_ what: @autoclosure () -> String) throws(ServalError) -> Bool {
        switch try peek(expecting: what()) {
        case UInt8(ascii: "t"):
            try readLiteral("true")
            return true
        case UInt8(ascii: "f"):
            try readLiteral("false")
            return false
        default:
            throw ServalError(.validationError, "\(what()) must be true or false, not \(describeValue()).")
        }
    }

    // MARK: Numbers

    /// Whether `byte` can start a number.
    @inline(__always)
    static func startsNumber(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "N"), UInt8(ascii: "I"): true
        default: false
        }
    }

    /// Reads a number: its first 19 significant digits and decimal exponent (see ``ScannedNumber``).
    @inline(__always)
    mutating func scanNumber() throws(ServalError) -> ScannedNumber {
        let start = position
        var index = position
        let count = bytes.count
        var negative = false
        if index < count, bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard index < count else {
            position = index
            throw syntaxError(expecting: "a digit")
        }
        var mantissa: UInt64 = 0
        var digits = 0
        var exponent = 0
        var truncated = false
        let first = bytes[index]
        if first == UInt8(ascii: "0") {
            index += 1
        } else if first &- UInt8(ascii: "1") < 9 {
            while index < count {
                if digits <= 11, index + 8 <= count {
                    let run = digitRun(at: index)
                    mantissa = mantissa &* Self.powersOfTen[run.length] &+ run.value
                    digits += run.length
                    index += run.length
                    if run.length < 8 { break }
                    continue
                }
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { break }
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(digit)
                    digits += 1
                } else {
                    exponent += 1
                    if digit != 0 { truncated = true }
                }
                index += 1
            }
        } else if first == UInt8(ascii: "I") || (first == UInt8(ascii: "N") && !negative) {
            position = index
            let isNaN = first == UInt8(ascii: "N")
            try readLiteral(isNaN ? "NaN" : "Infinity")
            return ScannedNumber(
                start: start, end: position, kind: isNaN ? .nan : .infinity, negative: negative, mantissa: 0,
                exponent: 0, truncated: false)
        } else {
            position = index
            throw syntaxError(expecting: "a value")
        }
        if index < count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < count, bytes[index] &- UInt8(ascii: "0") < 10 else {
                position = index
                throw syntaxError(expecting: "a digit after '.'")
            }
            while index < count {
                // Up to eight digits at a time once past leading zeros, while they fit in 19.
                if digits > 0, digits <= 11, index + 8 <= count {
                    let run = digitRun(at: index)
                    mantissa = mantissa &* Self.powersOfTen[run.length] &+ run.value
                    digits += run.length
                    exponent -= run.length
                    index += run.length
                    if run.length < 8 { break }
                    continue
                }
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { break }
                if digits == 0, digit == 0 {
                    exponent -= 1
                } else if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(digit)
                    digits += 1
                    exponent -= 1
                } else if digit != 0 {
                    truncated = true
                }
                index += 1
            }
        }
        if index < count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            var negativeExponent = false
            if index < count, bytes[index] == UInt8(ascii: "-") || bytes[index] == UInt8(ascii: "+") {
                negativeExponent = bytes[index] == UInt8(ascii: "-")
                index += 1
            }
            guard index < count, bytes[index] &- UInt8(ascii: "0") < 10 else {
                position = index
                throw syntaxError(expecting: "a digit in the exponent")
            }
            var explicit = 0
            while index < count {
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { break }
                // Saturates far beyond any exponent that matters, and beyond any body's digit count.
                if explicit < 1 << 40 { explicit = explicit * 10 + Int(digit) }
                index += 1
            }
            exponent += negativeExponent ? -explicit : explicit
        }
        position = index
        return ScannedNumber(
            start: start, end: index, kind: .finite, negative: negative, mantissa: mantissa, exponent: exponent,
            truncated: truncated)
    }

    /// 10^0 … 10^8.
    private static let powersOfTen: [UInt64] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000]

    /// The value and length of the run of up to eight ASCII digits at `index` (SWAR, as in `fast_float`, extended
    /// to shorter runs). Eight bytes must be readable there.
    @inline(__always)
    private func digitRun(at index: Int) -> (value: UInt64, length: Int) {
        let chunk = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
        // A byte's top bit is set here when it is not a digit; bytes before the first such byte are digits, which
        // neither carry nor borrow, so the lowest set bit marks the first non-digit.
        let nonDigits = ((chunk &+ 0x4646_4646_4646_4646) | (chunk &- 0x3030_3030_3030_3030)) & 0x8080_8080_8080_8080
        let length = nonDigits.trailingZeroBitCount &>> 3
        guard length > 0 else { return (0, 0) }
        // The digits move to the high bytes; '0's fill the low ones (the first byte is the leading digit).
        let padded =
            length == 8 ? chunk : chunk &<< UInt64(64 &- 8 &* length) | 0x3030_3030_3030_3030 &>> UInt64(8 &* length)
        var value = padded & 0x0F0F_0F0F_0F0F_0F0F
        value = (value &* 2561) &>> 8
        value = ((value & 0x00FF_00FF_00FF_00FF) &* 6_553_601) &>> 16
        return (((value & 0x0000_FFFF_0000_FFFF) &* 42_949_672_960_001) &>> 32, length)
    }

    /// The result of ``scanInteger()``.
    enum IntegerScan {
        /// An integer that fits 64 bits of magnitude.
        case value(negative: Bool, magnitude: UInt64)
        /// Not an integer: a fraction, an exponent, or not a number; nothing consumed.
        case notInteger
        /// An integer whose magnitude exceeds 64 bits; nothing consumed.
        case tooLarge
    }

    /// Reads an integer: an optional minus sign and digits, with no fraction or exponent.
    @inline(__always)
    mutating func scanInteger() -> IntegerScan {
        var index = position
        let count = bytes.count
        var negative = false
        if index < count, bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        guard index < count else { return .notInteger }
        var magnitude: UInt64 = 0
        let first = bytes[index]
        if first == UInt8(ascii: "0") {
            index += 1
        } else if first &- UInt8(ascii: "1") < 9 {
            var overflow = false
            while index < count {
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { break }
                let (times10, overflow1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(UInt64(digit))
                magnitude = sum
                overflow = overflow || overflow1 || overflow2
                index += 1
            }
            if overflow { return .tooLarge }
        } else {
            return .notInteger
        }
        if index < count, bytes[index] == UInt8(ascii: ".") || bytes[index] | 0x20 == UInt8(ascii: "e") {
            return .notInteger
        }
        position = index
        return .value(negative: negative, magnitude: magnitude)
    }

    /// Reads a non-negative integer that fits `Int`, e.g. a dimension or a byte size. `what` names it.
    mutating func readCount(_ what: @autoclosure () -> String) throws(ServalError) -> Int {
        let start = position
        if Self.startsNumber(try peek(expecting: what())), case .value(let negative, let magnitude) = scanInteger(),
            negative == false || magnitude == 0, magnitude <= UInt64(Int.max)
        {
            return Int(magnitude)
        }
        position = start
        throw ServalError(.validationError, "\(what()) must be a non-negative integer, not \(describeValue()).")
    }

    // MARK: Strings

    /// Reads a string at the current position (which must be `"`), checking escapes and UTF-8.
    mutating func readString() throws(ServalError) -> JSONString {
        position += 1
        let start = position
        var hasEscapes = false
        let count = bytes.count
        while position < count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let string = JSONString(start: start, end: position, hasEscapes: hasEscapes)
                position += 1
                return string
            }
            if byte == UInt8(ascii: "\\") {
                hasEscapes = true
                try checkEscape()
            } else if byte < 0x20 {
                throw ServalError(
                    .validationError,
                    "The request's JSON has a raw control character (0x\(String(byte, radix: 16))) in a string at "
                        + "byte \(position); escape it, e.g. as \\n or \\u00XX.")
            } else if byte < 0x80 {
                position += 1
            } else {
                guard let length = UTF8Validation.sequenceLength(bytes, at: position) else {
                    throw ServalError(
                        .validationError,
                        "The request's JSON has a string that is not valid UTF-8 at byte \(position); JSON text must be UTF-8."
                    )
                }
                position += length
            }
        }
        throw syntaxError(expecting: "the closing '\"' of a string")
    }

    /// Checks the escape sequence at the current position (a backslash) and consumes it.
    private mutating func checkEscape() throws(ServalError) {
        guard position + 1 < bytes.count else {
            position = bytes.count
            throw syntaxError(expecting: "an escape sequence")
        }
        switch bytes[position + 1] {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            position += 2
        case UInt8(ascii: "u"):
            let unit = try readHexEscape()
            switch unit {
            case 0xD800...0xDBFF:
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                    bytes[position + 1] == UInt8(ascii: "u")
                else { throw surrogateError() }
                let low = try readHexEscape()
                guard (0xDC00...0xDFFF).contains(low) else { throw surrogateError() }
            case 0xDC00...0xDFFF:
                throw surrogateError()
            default:
                break
            }
        default:
            position += 1
            throw syntaxError(expecting: "an escape: \\\", \\\\, \\/, \\b, \\f, \\n, \\r, \\t or \\uXXXX")
        }
    }

    /// Reads `\uXXXX` at the current position and returns the code unit.
    private mutating func readHexEscape() throws(ServalError) -> UInt16 {
        position += 2
        guard position + 4 <= bytes.count else {
            position = bytes.count
            throw syntaxError(expecting: "four hex digits after \\u")
        }
        var unit: UInt16 = 0
        for _ in 0..<4 {
            guard let value = Self.hexValue(bytes[position]) else { throw syntaxError(expecting: "a hex digit") }
            unit = unit << 4 | UInt16(value)
            position += 1
        }
        return unit
    }

    private func surrogateError() -> ServalError {
        ServalError(
            .validationError,
            "The request's JSON has an unpaired UTF-16 surrogate escape before byte \(position); a string must encode "
                + "valid Unicode.")
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// Calls `body` with each byte of the string's UTF-8 value, escapes decoded.
    func forEachByte(of string: JSONString, _ body: (UInt8) -> Void) {
        var index = string.start
        guard string.hasEscapes else {
            while index < string.end {
                body(bytes[index])
                index += 1
            }
            return
        }
        while index < string.end {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\\") else {
                body(byte)
                index += 1
                continue
            }
            let escape = bytes[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "b"): body(0x08)
            case UInt8(ascii: "f"): body(0x0C)
            case UInt8(ascii: "n"): body(0x0A)
            case UInt8(ascii: "r"): body(0x0D)
            case UInt8(ascii: "t"): body(0x09)
            case UInt8(ascii: "u"):
                var scalar = UInt32(hexUnit(at: index))
                index += 4
                if scalar >= 0xD800, scalar <= 0xDBFF {
                    let low = UInt32(hexUnit(at: index + 2))
                    index += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                for unit in UTF8.encode(Unicode.Scalar(scalar)!)! { body(unit) }
            default: body(escape)  // " \ /
            }
        }
    }

    private func hexUnit(at index: Int) -> UInt16 {
        var unit: UInt16 = 0
        for offset in 0..<4 { unit = unit << 4 | UInt16(Self.hexValue(bytes[index + offset])!) }
        return unit
    }

    /// The string's value.
    func string(_ string: JSONString) -> String {
        guard string.hasEscapes else {
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[string.start..<string.end]), as: UTF8.self)
        }
        var utf8: [UInt8] = []
        utf8.reserveCapacity(string.end - string.start)
        forEachByte(of: string) { utf8.append($0) }
        return String(decoding: utf8, as: UTF8.self)
    }

    /// Whether the string's value is `literal`.
    func string(_ string: JSONString, equals literal: StaticString) -> Bool {
        let text = literal.utf8Start
        let count = literal.utf8CodeUnitCount
        guard string.hasEscapes else {
            guard string.end - string.start == count else { return false }
            for offset in 0..<count where bytes[string.start + offset] != text[offset] { return false }
            return true
        }
        var offset = 0
        var equal = true
        forEachByte(of: string) { byte in
            if offset >= count || text[offset] != byte { equal = false }
            offset += 1
        }
        return equal && offset == count
    }
}

/// A string in the scanned JSON: the byte range between its quotes.
struct JSONString {
    /// The offset of the first byte after the opening quote.
    var start: Int
    /// The offset of the closing quote.
    var end: Int
    /// Whether the string contains backslash escapes.
    var hasEscapes: Bool
}

/// UTF-8 well-formedness (RFC 3629: no overlong forms, surrogates or values past U+10FFFF).
enum UTF8Validation {
    /// The length of the well-formed multi-byte sequence at `index` (whose first byte is at least 0x80), or nil.
    static func sequenceLength(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Int? {
        let lead = bytes[index]
        let length: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0:
            length = 3
            secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED:
            length = 3
            secondRange = 0x80...0x9F
        case 0xF0:
            length = 4
            secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4:
            length = 4
            secondRange = 0x80...0x8F
        default: return nil
        }
        guard index + length <= bytes.count, secondRange.contains(bytes[index + 1]) else { return nil }
        for offset in 2..<length where bytes[index + offset] & 0xC0 != 0x80 { return nil }
        return length
    }

    /// Whether all of `bytes` is well-formed UTF-8.
    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        while index < bytes.count {
            if bytes[index] < 0x80 {
                index += 1
            } else if let length = sequenceLength(bytes, at: index) {
                index += length
            } else {
                return false
            }
        }
        return true
    }
}
