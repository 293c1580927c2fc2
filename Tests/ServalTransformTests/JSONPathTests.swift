import ServalCore
import ServalTransform
import Testing

@Suite("JSONPath")
struct JSONPathTests {
    static let document =
        #"{"id": 7, "features": [10, 11, 12, 13, 14, 15], "a": {"b": {"c": "deep"}, "x": [1, {"y": 2}]}, "k.e y": 1}"#

    @Test(
        "selections on a JSON record",
        arguments: [
            ("$", document),
            ("$.id", "7"),
            ("$['id']", "7"),
            ("$[\"id\"]", "7"),
            ("$.a.b.c", #""deep""#),
            ("$.a['b'].c", #""deep""#),
            ("$.a.x[1].y", "2"),
            ("$['k.e y']", "1"),
            ("$['id','features']", #"{"id":7,"features":[10,11,12,13,14,15]}"#),
            ("$['features', 'id']", #"{"features":[10,11,12,13,14,15],"id":7}"#),
            ("$['id','missing']", #"{"id":7}"#),
            ("$.a.['b','x']", #"{"b":{"c":"deep"},"x":[1,{"y":2}]}"#),
            ("$.features[1]", "11"),
            ("$.features[-1]", "15"),
            ("$.features[1,3]", "[11,13]"),
            ("$.features[3, 1]", "[13,11]"),
            ("$.features[2:5]", "[12,13,14]"),
            ("$.features[1:]", "[11,12,13,14,15]"),
            ("$.features[:2]", "[10,11]"),
            ("$.features[-2:]", "[14,15]"),
            ("$.features[:-4]", "[10,11]"),
            ("$.features[0,4:]", "[10,14,15]"),
            ("$.features[4:2]", "[]"),
            ("$.features[2:100]", "[12,13,14,15]"),
            ("$.features[*]", "[10,11,12,13,14,15]"),
            ("$.a.b.*", #"["deep"]"#),
            ("$.a.*", #"[{"c":"deep"},[1,{"y":2}]]"#),
        ])
    func selectJSON(path: String, expected: String) throws {
        let value = try JSONValue(parsing: JSONPathTests.document)
        let selected = try JSONPath(path).select(in: value)
        #expect(selected == (try JSONValue(parsing: expected)), "\(path) gave \(selected)")
    }

    @Test(
        "what a record lacks is an error naming the filter, the record and the place",
        arguments: [
            ("$.nope", "$ has no key \"nope\""),
            ("$.id.x", "$.id is a number, not an object"),
            ("$.features[6]", "$.features has 6 elements; index 6 is out of range"),
            ("$.features[-7]", "$.features has 6 elements; index -7 is out of range"),
            ("$.features[0,9]", "$.features has 6 elements; index 9 is out of range"),
            ("$.id[0]", "$.id is a number, not an array"),
            ("$.id[1:]", "$.id is a number, not an array"),
            ("$.id['a','b']", "$.id is a number, not an object"),
            ("$.id.*", "$.id is a number, not an object or an array"),
        ])
    func mismatches(path: String, reason: String) throws {
        let value = try JSONValue(parsing: JSONPathTests.document)
        let filter = try JSONPath(path, field: "DataProcessing.OutputFilter")
        expectError(.validationError, "DataProcessing.OutputFilter \"\(path)\" does not fit record 4: \(reason).") {
            _ = try filter.select(in: value, record: 3)
        }
    }

    @Test(
        "unsupported or malformed expressions are refused with the reason and the character",
        arguments: [
            ("", "it is empty"),
            ("a", "must start with $"),
            ("$a", "expected '.' or '['"),
            ("$.", "expected a name after '.'"),
            ("$..a", "recursive descent"),
            ("$[a", "expected a quoted name, an index, a slice or '*' (at character 3)"),
            ("$[1", "is not closed"),
            ("$['a'", "is not closed"),
            ("$['a", "quoted name at character 3 is not closed"),
            ("$[]", "empty brackets"),
            ("$[?(@.a > 1)]", "filter expressions"),
            ("$[(@.length-1)]", "script expressions"),
            ("$[1:2:3]", "slice steps"),
            ("$[1 2]", "expected ',' or ']'"),
            ("$['a',1]", "names and indices cannot be mixed"),
            ("$[*,1]", "'*' cannot be combined"),
            ("$[1,*]", "'*' cannot be combined"),
            ("$[-]", "expected digits after '-'"),
            ("$[:]x", "expected '.' or '['"),
            ("$[1234567890]", "too large"),
            ("$.a b", "' ' cannot appear in a name"),
            ("$.a'", "cannot appear in a name"),
            ("$[1,2].a", "only the last step may select several"),
            ("$[1:].a", "only the last step may select several"),
            ("$['a','b'].c", "only the last step may select several"),
            ("$.*.a", "only the last step may select several"),
        ])
    func syntaxErrors(expression: String, reason: String) {
        expectError(
            .validationError, "DataProcessing.InputFilter \"\(expression)\" is not a supported JSONPath: ", reason
        ) {
            _ = try JSONPath(expression)
        }
    }

    @Test("the error names the character position")
    func position() {
        expectError(.validationError, "(at character 3)") { _ = try JSONPath("$[a") }
        expectError(.validationError, "(at character 2)") { _ = try JSONPath("$..a") }
    }

    @Test(
        "column selections on CSV rows",
        arguments: [
            ("$", [0, 1, 2, 3, 4]), ("$[1:]", [1, 2, 3, 4]), ("$[0,-1]", [0, 4]), ("$[2]", [2]),
            ("$[*]", [0, 1, 2, 3, 4]),
            ("$[:-2]", [0, 1, 2]), ("$[0,3:]", [0, 3, 4]), ("$[-1,0]", [4, 0]),
        ])
    func columns(path: String, expected: [Int]) throws {
        let filter = try JSONPath(path)
        #expect(filter.selectsColumns)
        #expect(try filter.selectColumns(count: 5) == expected)
    }

    @Test("only one bracket of positions selects columns")
    func notColumns() throws {
        for path in ["$.a", "$['a']", "$[1][2]", "$[1].a", "$['a','b']"] {
            #expect(try !JSONPath(path).selectsColumns, "\(path)")
        }
        expectError(.validationError, "the row has 5 columns; index 5 is out of range") {
            _ = try JSONPath("$[0,5]").selectColumns(count: 5, record: 0)
        }
    }

    @Test("$ is the root")
    func root() throws {
        #expect(try JSONPath("$").isRoot)
        #expect(try !JSONPath("$[0]").isRoot)
        #expect(try JSONPath("$.a[1:3]").selectors == [[.name("a")], [.slice(start: 1, end: 3)]])
    }
}
