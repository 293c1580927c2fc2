import ServalCore
import ServalTransform
import Testing

@Suite("JSONValue")
struct JSONValueTests {
    @Test("parsing then writing compactly keeps key order, duplicates and number text; drops whitespace")
    func roundTrip() throws {
        let source = #" { "z": 1.50, "a": [true, false, null, -0, 1E+3, 2.5e-7], "z": "dup", "o": {} , "e": [] } "#
        let value = try JSONValue(parsing: source)
        #expect(value.description == #"{"z":1.50,"a":[true,false,null,-0,1E+3,2.5e-7],"z":"dup","o":{},"e":[]}"#)
        #expect(value["z"] == .number("1.50"))
        #expect(value["missing"] == nil)
        #expect(try JSONValue(parsing: value.serialized()) == value)
    }

    @Test("strings: escapes are decoded, and written back minimally")
    func strings() throws {
        let value = try JSONValue(parsing: #""a\"b\\c\/d\n\t\r\b\f\u0001 é \u00e9 \ud83d\ude00""#)
        #expect(value == .string("a\"b\\c/d\n\t\r\u{08}\u{0C}\u{01} é é 😀"))
        #expect(value.description == #""a\"b\\c/d\n\t\r\b\f\u0001 é é 😀""#)
    }

    @Test("scalars stand alone")
    func scalars() throws {
        #expect(try JSONValue(parsing: "42") == .number("42"))
        #expect(try JSONValue(parsing: "\"x\"") == .string("x"))
        #expect(try JSONValue(parsing: " null\n") == .null)
    }

    @Test(
        "strict: invalid JSON is refused with its byte offset",
        arguments: [
            ("", "unexpected end", 0), ("{", "unexpected end inside an object", 1), ("[1,]", "unexpected character", 3),
            ("{\"a\":1,}", "expected a key", 7), ("01", "leading zero", 1), ("1.", "after '.'", 2),
            ("1e", "exponent", 2), ("-", "expected a digit", 1), ("NaN", "unexpected character", 0),
            ("tru", "invalid literal", 0), ("\"a\nb\"", "control character", 2), ("\"abc", "unterminated", 0),
            ("\"\\x\"", "invalid escape", 1), ("\"\\ud800\"", "lone surrogate", 1),
            ("\"\\udc00\"", "lone surrogate", 1),
            ("\"\\u12\"", "hex digits", 3), ("1 2", "after the value", 2), ("{\"a\" 1}", "expected ':'", 5),
            ("[1 2]", "expected ',' or ']'", 3), ("{'a':1}", "expected a key", 1),
            ("// c\n1", "unexpected character", 0),
        ])
    func invalid(input: String, reason: String, offset: Int) {
        expectError(.validationError, "not valid JSON", reason, "at byte \(offset)") {
            _ = try JSONValue(parsing: input)
        }
    }

    @Test("invalid UTF-8 in a string is refused")
    func invalidUTF8() {
        expectError(.validationError, "invalid UTF-8", "at byte 0") { _ = try JSONValue(parsing: [0x22, 0xFF, 0x22]) }
        expectError(.validationError, "invalid UTF-8") { _ = try JSONValue(parsing: [0x22, 0x5C, 0x6E, 0xC3, 0x22]) }
    }

    @Test("nesting is limited rather than overflowing the stack")
    func depth() throws {
        _ = try JSONValue(parsing: String(repeating: "[", count: 512) + String(repeating: "]", count: 512))
        expectError(.validationError, "nesting deeper than 512") {
            _ = try JSONValue(parsing: String(repeating: "[", count: 100_000))
        }
    }

    @Test("offsets count from the start of a slice")
    func sliceOffsets() {
        let buffer = bytes("xxxx[1,,2]")
        expectError(.validationError, "at byte 3") { _ = try JSONValue(parsing: buffer[4...]) }
    }
}
