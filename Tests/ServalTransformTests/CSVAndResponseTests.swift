import ServalCore
import ServalTransform
import Testing

@Suite("CSVRow")
struct CSVRowTests {
    func fields(_ row: String) throws -> [String] {
        let data = bytes(row)
        var ranges: [Range<Int>] = []
        try CSVRow.fields(of: data[...], into: &ranges)
        return ranges.map { text(data[$0]) }
    }

    @Test("fields keep their raw bytes, quotes included (RFC 4180)")
    func raw() throws {
        #expect(try fields("a,b,c") == ["a", "b", "c"])
        #expect(try fields("") == [""])
        #expect(try fields(",") == ["", ""])
        #expect(try fields(#""a,b",c"#) == [#""a,b""#, "c"])
        #expect(try fields(#""say ""hi""",2,"""#) == [#""say ""hi""""#, "2", #""""#])
        #expect(try fields(#"1, "x",y"z"#) == ["1", #" "x""#, #"y"z"#])
        #expect(try fields("\"a\nb\",c") == ["\"a\nb\"", "c"])
    }

    @Test("a slice's field ranges are indices of the slice")
    func sliceIndices() throws {
        let data = bytes("xx|a,b")
        var ranges: [Range<Int>] = []
        try CSVRow.fields(of: data[3...], into: &ranges)
        #expect(ranges == [3..<4, 5..<6])
    }

    @Test("unterminated quotes and bytes after a closing quote are errors")
    func invalid() {
        expectError(.validationError, "byte 2", "no closing quote") { _ = try fields(#"a,"bc"#) }
        expectError(.validationError, "after a closing quote at byte 3") { _ = try fields(#""a"b,c"#) }
    }

    @Test("fields are quoted only when they must be")
    func write() {
        var output: [UInt8] = []
        for field in ["plain", "a,b", #"say "hi""#, "two\nlines", ""] {
            CSVRow.writeField(bytes(field), to: &output)
            output.append(UInt8(ascii: "|"))
        }
        #expect(text(output) == #"plain|"a,b"|"say ""hi"""|"two"# + "\n" + #"lines"||"#)
    }
}

@Suite("ResponseSplitter")
struct ResponseSplitterTests {
    func split(_ response: String, _ type: String, _ records: Int) throws -> [String] {
        let outputs = try ResponseSplitter.split(bytes(response), contentType: type, records: records)
        return outputs.map { text($0) }
    }

    @Test("CSV and JSON Lines: one non-blank line per record, line endings dropped")
    func lines() throws {
        #expect(try split("1\n2\n3\n", "text/csv", 3) == ["1", "2", "3"])
        #expect(try split("1\r\n2\r\n3", "text/csv; charset=utf-8", 3) == ["1", "2", "3"])
        #expect(try split("\n{\"a\":1}\n\n {\"a\": 2}\n", "application/jsonlines", 2) == [#"{"a":1}"#, #" {"a": 2}"#])
        #expect(try split("0.5,0.5", "TEXT/CSV", 1) == ["0.5,0.5"])
        #expect(try split("a\nb", "text/plain", 2) == ["a", "b"])
    }

    @Test("JSON: predictions, a bare array, or the whole value for one record, written compactly")
    func json() throws {
        #expect(
            try split(#"{"predictions": [1, {"b": 2}, [3]], "model": "m"}"#, "application/json", 3) == [
                "1", #"{"b":2}"#, "[3]",
            ])
        #expect(try split("[ 1.0 , 2 ]", "application/json", 2) == ["1.0", "2"])
        #expect(try split(#"{"predictions": [0.9]}"#, "application/json", 1) == ["0.9"])
        #expect(try split("[0.9]", "application/json", 1) == ["0.9"])
        #expect(try split("[0.1, 0.9]", "application/json", 1) == ["[0.1,0.9]"])
        #expect(try split(#"{"label": "cat",  "p": 1}"#, "application/json", 1) == [#"{"label":"cat","p":1}"#])
        #expect(try split(#"{"predictions": [1, 2]}"#, "application/json", 1) == [#"{"predictions":[1,2]}"#])
        #expect(try split("[[1,2],[3,4]]", "application/vnd.custom+json", 2) == ["[1,2]", "[3,4]"])
        // The "outputs" member is not split.
        #expect(try split(#"{"outputs": [1, 2]}"#, "application/json", 1) == [#"{"outputs":[1,2]}"#])
    }

    @Test("no media type: JSON when the whole response parses, lines otherwise")
    func sniff() throws {
        #expect(try split("[1, 2]", "", 2) == ["1", "2"])
        #expect(try split("{\"a\":1}\n{\"a\":2}\n", "", 2) == [#"{"a":1}"#, #"{"a":2}"#])
        #expect(try split("1,2\n3,4\n", "", 2) == ["1,2", "3,4"])
    }

    @Test("binary responses are one record's output")
    func binary() throws {
        #expect(try split("\u{01}\u{02}\n", "application/x-protobuf", 1) == ["\u{01}\u{02}"])
        expectError(.modelError, "cannot be split into 2 outputs", "SingleRecord") {
            _ = try split("ab", "application/octet-stream", 2)
        }
    }

    @Test(
        "a count mismatch is a model error saying how many",
        arguments: [
            ("1\n2\n3\n", "text/csv", 5, "the model returned 3 outputs for 5 records"),
            ("1\n\n2\n", "application/jsonlines", 1, "the model returned 2 outputs for 1 record;"),
            ("", "text/csv", 1, "the model returned 0 outputs for 1 record;"),
            (#"{"predictions": [1, 2]}"#, "application/json", 3, "the model returned 2 outputs for 3 records"),
            ("[1, 2]", "application/json", 3, "the model returned 2 outputs for 3 records"),
            (#"{"label": 1}"#, "application/json", 2, "the model returned 1 output for 2 records"),
        ])
    func mismatch(response: String, type: String, records: Int, message: String) {
        expectError(.modelError, message) { _ = try split(response, type, records) }
    }

    @Test("a response declared JSON that is not JSON is a model error")
    func badJSON() {
        expectError(.modelError, "declared application/json but is not valid JSON", "at byte 1") {
            _ = try split("[}", "application/json", 1)
        }
    }
}
