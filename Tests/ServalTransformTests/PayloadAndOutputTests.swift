import ServalCore
import ServalTransform
import Testing

/// The records of `data` as one unit.
func unit(_ data: String, _ splitType: TransformSplitType = .line, firstRecord: Int = 0) throws -> UnitRecords {
    try RecordSplitter(splitType: splitType).split(bytes(data), firstRecord: firstRecord)
}

/// A stand-in model: answers each record of a payload with `answer(record)`, in the shape of `accept`.
func respond(to payload: TransformPayload, accept: String, answer: (String) -> String) -> [UInt8] {
    let records = text(payload.bytes).split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(
        String.init)
    let answers = records.map(answer)
    switch accept {
    case "application/json": return bytes(#"{"predictions": ["# + answers.joined(separator: ", ") + "]}")
    default: return bytes(answers.map { $0 + "\n" }.joined())
    }
}

/// Runs every payload of `unit` through the stand-in model and assembles the outputs.
func transform(
    _ unit: UnitRecords, _ settings: TransformRecordSettings, answer: (String) -> String
) throws -> String {
    let assembler = OutputAssembler(settings: settings)
    var output: [UInt8] = []
    for payload in try PayloadBuilder(settings: settings).payloads(for: unit) {
        let response = respond(to: payload, accept: settings.accept, answer: answer)
        try assembler.append(response: response, contentType: "", for: payload, of: unit, to: &output)
    }
    return text(output)
}

@Suite("PayloadBuilder")
struct PayloadBuilderTests {
    @Test("MultiRecord fills payloads up to the maximum; SingleRecord sends one record each")
    func grouping() throws {
        let records = try unit("aa\nbb\ncc\ndd\nee", firstRecord: 10)
        let multi = try PayloadBuilder(settings: TransformRecordSettings(splitType: .line, maxPayloadBytes: 7))
            .payloads(for: records)
        #expect(multi.map { text($0.bytes) } == ["aa\nbb\n", "cc\ndd\n", "ee\n"])
        #expect(multi.map(\.records) == [0..<2, 2..<4, 4..<5])
        #expect(multi.map(\.firstRecord) == [10, 12, 14])
        let single = try PayloadBuilder(
            settings: TransformRecordSettings(splitType: .line, batchStrategy: .singleRecord)
        ).payloads(for: records)
        #expect(single.map { text($0.bytes) } == ["aa\n", "bb\n", "cc\n", "dd\n", "ee\n"])
        #expect(single.map(\.recordCount) == [1, 1, 1, 1, 1])
    }

    @Test("plain lines are sent as slices of the unit; CRLF and blank lines are rewritten")
    func zeroCopy() throws {
        let plain = try unit("a\nb\nc\n")
        let payload = try PayloadBuilder(settings: TransformRecordSettings(splitType: .line)).payloads(for: plain)[0]
        #expect(payload.bytes.startIndex == 0 && payload.bytes.endIndex == 6)
        let messy = try unit("a\r\n\n  \nb\nc")
        #expect(
            try PayloadBuilder(settings: TransformRecordSettings(splitType: .line)).payloads(for: messy).map {
                text($0.bytes)
            } == ["a\nb\nc\n"])
    }

    @Test("framed records go with their framing; None sends the object unchanged")
    func framed() throws {
        let data = recordIOFrame(bytes("abc")) + recordIOFrame(bytes("defgh"))
        let records = try RecordSplitter(splitType: .recordIO).split(data)
        let settings = try TransformRecordSettings(splitType: .recordIO, maxPayloadBytes: 100)
        #expect(try PayloadBuilder(settings: settings).payloads(for: records).map { Array($0.bytes) } == [data])
        let single = try TransformRecordSettings(splitType: .recordIO, batchStrategy: .singleRecord)
        #expect(
            try PayloadBuilder(settings: single).payloads(for: records).map { Array($0.bytes) } == [
                Array(data[0..<12]), Array(data[12...]),
            ])
        let whole = try unit("{\n \"a\": 1\n}\n", .none)
        let payloads = try PayloadBuilder(settings: TransformRecordSettings(splitType: .none)).payloads(for: whole)
        #expect(payloads.map { text($0.bytes) } == ["{\n \"a\": 1\n}\n"])
        #expect(
            try PayloadBuilder(settings: TransformRecordSettings(splitType: .line)).payloads(for: unit("\n\n")).isEmpty)
    }

    @Test("a CSV input filter sends the selected raw columns")
    func csvFilter() throws {
        let settings = try TransformRecordSettings(splitType: .line, contentType: "text/csv", inputFilter: "$[1:]")
        let payloads = try PayloadBuilder(settings: settings).payloads(for: unit("id1,\"a,b\",2\nid2,x,3\n"))
        #expect(payloads.map { text($0.bytes) } == ["\"a,b\",2\nx,3\n"])
        let reorder = try TransformRecordSettings(splitType: .line, contentType: "text/csv", inputFilter: "$[-1,0]")
        #expect(try PayloadBuilder(settings: reorder).payloads(for: unit("a,b,c")).map { text($0.bytes) } == ["c,a\n"])
    }

    @Test("a JSON input filter sends the selected value compactly")
    func jsonFilter() throws {
        let settings = try TransformRecordSettings(
            splitType: .line, contentType: "application/jsonlines", inputFilter: "$.features")
        let data = "{\"id\": 1, \"features\": [1, 2.50]}\n{\"id\": 2, \"features\": {\"x\": \"é\"}}\n"
        #expect(
            try PayloadBuilder(settings: settings).payloads(for: unit(data)).map { text($0.bytes) } == [
                "[1,2.50]\n{\"x\":\"é\"}\n"
            ])
        let none = try TransformRecordSettings(splitType: .none, contentType: "application/json", inputFilter: "$['b']")
        #expect(
            try PayloadBuilder(settings: none).payloads(for: unit("{\n\"a\": 1, \"b\": [true]\n}", .none)).map {
                text($0.bytes)
            } == ["[true]"])
    }

    @Test("filtered records are grouped by their filtered size")
    func filteredGrouping() throws {
        let settings = try TransformRecordSettings(
            splitType: .line, maxPayloadBytes: 4, contentType: "text/csv", inputFilter: "$[0]")
        let payloads = try PayloadBuilder(settings: settings).payloads(for: unit("a,xxxxxxxx\nb,yyyyyyyy\nc,zzz\n"))
        #expect(payloads.map { text($0.bytes) } == ["a\nb\n", "c\n"])
        #expect(payloads.map(\.records) == [0..<2, 2..<3])
    }

    @Test("records a filter cannot read or does not fit are errors naming the record")
    func filterErrors() throws {
        let json = try TransformRecordSettings(splitType: .line, contentType: "application/json", inputFilter: "$.a")
        expectError(.validationError, "needs JSON records", "record 6", "not valid JSON") {
            _ = try PayloadBuilder(settings: json).payloads(for: unit("{\"a\":1}\nnope\n", firstRecord: 4))
        }
        expectError(.validationError, "does not fit record 5", "has no key \"a\"") {
            _ = try PayloadBuilder(settings: json).payloads(for: unit("{\"b\":1}\n", firstRecord: 4))
        }
        let csv = try TransformRecordSettings(splitType: .line, contentType: "text/csv", inputFilter: "$[3]")
        expectError(.validationError, "record 1", "the row has 2 columns; index 3 is out of range") {
            _ = try PayloadBuilder(settings: csv).payloads(for: unit("a,b\n"))
        }
        expectError(.validationError, "cannot read record 1", "no closing quote") {
            _ = try PayloadBuilder(settings: csv).payloads(for: unit("a,\"b\n"))
        }
        let grown = try TransformRecordSettings(
            splitType: .line, maxPayloadBytes: 4, contentType: "application/json", inputFilter: "$.a")
        expectError(.validationError, "record 1 after DataProcessing.InputFilter is 5 bytes") {
            _ = try PayloadBuilder(settings: grown).payloads(for: unit("{\"a\":1234}"))
        }
    }
}

@Suite("OutputAssembler and RecordJoiner")
struct OutputAssemblerTests {
    static let csv = "1,0.5,a\n2,0.25,b\n\n3,0.75,c\r\n4,1.0,d"

    @Test("SingleRecord and MultiRecord write the same lines", arguments: ["text/csv", "application/json"])
    func singleEqualsMulti(accept: String) throws {
        let records = try unit(OutputAssemblerTests.csv)
        let answer = { (record: String) in
            accept == "text/csv" ? "p" + record.prefix(1) : "{\"p\": \(record.prefix(1))}"
        }
        var outputs: [String] = []
        for strategy in [TransformBatchStrategy.singleRecord, .multiRecord] {
            for max in [9, 100] {
                let settings = try TransformRecordSettings(
                    splitType: .line, batchStrategy: strategy, maxPayloadBytes: max, contentType: "text/csv",
                    accept: accept, assembleWith: .line)
                outputs.append(try transform(records, settings, answer: answer))
            }
        }
        let expected = accept == "text/csv" ? "p1\np2\np3\np4\n" : "{\"p\":1}\n{\"p\":2}\n{\"p\":3}\n{\"p\":4}\n"
        #expect(outputs == Array(repeating: expected, count: 4))
    }

    @Test("AssembleWith None passes the response through unchanged")
    func passThrough() throws {
        let settings = try TransformRecordSettings(splitType: .line, accept: "text/csv")
        let records = try unit("a\nb\n")
        let payload = try PayloadBuilder(settings: settings).payloads(for: records)[0]
        var output = bytes("before|")
        try OutputAssembler(settings: settings).append(
            response: bytes("whatever, 3 lines\n\nx"), contentType: "", for: payload, of: records, to: &output)
        #expect(text(output) == "before|whatever, 3 lines\n\nx")
    }

    @Test("AssembleWith Line writes unsplittable responses whole, ending in a newline")
    func unsplittable() throws {
        let whole = try TransformRecordSettings(splitType: .none, assembleWith: .line)
        let object = try unit("1,2\n3,4\n", .none)
        let payload = try PayloadBuilder(settings: whole).payloads(for: object)[0]
        var output: [UInt8] = []
        try OutputAssembler(settings: whole).append(
            response: bytes("a\nb"), contentType: "text/csv", for: payload, of: object, to: &output)
        try OutputAssembler(settings: whole).append(
            response: bytes("c\n"), contentType: "text/csv", for: payload, of: object, to: &output)
        #expect(text(output) == "a\nb\nc\n")
        let binary = try TransformRecordSettings(splitType: .line, assembleWith: .line)
        let lines = try unit("x\ny\n")
        let both = try PayloadBuilder(settings: binary).payloads(for: lines)[0]
        output = []
        try OutputAssembler(settings: binary).append(
            response: [0, 1, 2], contentType: "application/octet-stream", for: both, of: lines, to: &output)
        #expect(output == [0, 1, 2, 0x0A])
    }

    @Test("a count mismatch names the payload's records")
    func mismatch() throws {
        let settings = try TransformRecordSettings(splitType: .line, accept: "text/csv", assembleWith: .line)
        let records = try unit("a\nb\nc\n", firstRecord: 10)
        let payload = try PayloadBuilder(settings: settings).payloads(for: records)[0]
        var output: [UInt8] = []
        expectError(.modelError, "for records 11 to 13: the model returned 2 outputs for 3 records") {
            try OutputAssembler(settings: settings).append(
                response: bytes("1\n2\n"), contentType: "", for: payload, of: records, to: &output)
        }
    }

    @Test("CSV join appends the output's fields to the input row; the output filter picks columns of the joined row")
    func csvJoin() throws {
        let records = try unit(OutputAssemblerTests.csv)
        let joined = try TransformRecordSettings(
            splitType: .line, contentType: "text/csv", accept: "text/csv", assembleWith: .line, joinSource: .input,
            inputFilter: "$[1:]")
        #expect(
            try transform(records, joined) { "p," + $0.prefix(4) }
                == "1,0.5,a,p,0.5,\n2,0.25,b,p,0.25\n3,0.75,c,p,0.75\n4,1.0,d,p,1.0,\n")
        let filtered = try TransformRecordSettings(
            splitType: .line, contentType: "text/csv", accept: "text/csv", assembleWith: .line, joinSource: .input,
            inputFilter: "$[1:]",
            outputFilter: "$[0,-1]")
        #expect(try transform(records, filtered) { "x,p" + $0.prefix(1) } == "1,p0\n2,p0\n3,p0\n4,p1\n")
    }

    @Test("CSV join of JSON outputs: array elements become fields, objects one quoted field")
    func csvJoinJSON() {
        var row: [UInt8] = []
        RecordJoiner.joinCSV(input: bytes("1,a")[...], output: bytes(#"[0.5, "x,y", null, [1,2]]"#)[...], to: &row)
        #expect(text(row) == #"1,a,0.5,"x,y",null,"[1,2]""#)
        row = []
        RecordJoiner.joinCSV(input: bytes("1")[...], output: bytes(#"{"label": "cat", "p": 1}"#)[...], to: &row)
        #expect(text(row) == #"1,"{""label"":""cat"",""p"":1}""#)
        row = []
        RecordJoiner.joinCSV(input: bytes("1")[...], output: bytes("[not json")[...], to: &row)
        #expect(text(row) == "1,[not json")
    }

    @Test("JSON join adds SageMakerOutput to objects and wraps anything else")
    func jsonJoin() throws {
        let object = try JSONValue(parsing: #"{"id": 1, "f": [1]}"#)
        #expect(
            RecordJoiner.join(input: object, output: bytes(#"{"p": 0.5}"#)[...]).description
                == #"{"id":1,"f":[1],"SageMakerOutput":{"p":0.5}}"#)
        #expect(
            RecordJoiner.join(input: object, output: bytes("0.5,1")[...]).description
                == #"{"id":1,"f":[1],"SageMakerOutput":"0.5,1"}"#)
        let again = try JSONValue(parsing: #"{"SageMakerOutput": 0, "id": 1}"#)
        #expect(
            RecordJoiner.join(input: again, output: bytes("2")[...]).description == #"{"SageMakerOutput":2,"id":1}"#)
        let array = try JSONValue(parsing: "[1, 2]")
        #expect(
            RecordJoiner.join(input: array, output: bytes("3")[...]).description
                == #"{"SageMakerInput":[1,2],"SageMakerOutput":3}"#)
    }

    @Test("JSON Lines: input filter, join and output filter together, as in SageMaker's example")
    func jsonPipeline() throws {
        let data = "{\"id\": \"a\", \"features\": [1, 2]}\n{\"id\": \"b\", \"features\": [3, 4]}\n"
        let records = try unit(data)
        for strategy in [TransformBatchStrategy.singleRecord, .multiRecord] {
            let settings = try TransformRecordSettings(
                splitType: .line, batchStrategy: strategy, contentType: "application/jsonlines",
                accept: "application/json",
                assembleWith: .line, joinSource: .input, inputFilter: "$.features",
                outputFilter: "$['id','SageMakerOutput']")
            let output = try transform(records, settings) { features in "{\"sum\": \(features.count)}" }
            #expect(
                output
                    == "{\"id\":\"a\",\"SageMakerOutput\":{\"sum\":5}}\n{\"id\":\"b\",\"SageMakerOutput\":{\"sum\":5}}\n"
            )
        }
    }

    @Test("AssembleWith None with a join writes the joined records one after another")
    func joinWithoutLines() throws {
        let settings = try TransformRecordSettings(
            splitType: .line, contentType: "text/csv", accept: "text/csv", joinSource: .input)
        #expect(try transform(unit("1\n2\n"), settings) { "p" + $0 } == "1,p12,p2")
    }

    @Test("an output filter without a join applies to each output")
    func outputFilterAlone() throws {
        let records = try unit("a\nb\n")
        let json = try TransformRecordSettings(
            splitType: .line, accept: "application/json", assembleWith: .line, outputFilter: "$.label")
        #expect(try transform(records, json) { "{\"label\": \"L\($0)\", \"p\": 1}" } == "\"La\"\n\"Lb\"\n")
        let csv = try TransformRecordSettings(
            splitType: .line, accept: "text/csv", assembleWith: .line, outputFilter: "$[1]")
        #expect(try transform(records, csv) { "\($0),0.5" } == "0.5\n0.5\n")
        let sniffed = try TransformRecordSettings(splitType: .line, assembleWith: .line, outputFilter: "$[1]")
        #expect(try transform(records, sniffed) { "\($0),7" } == "7\n7\n")
        #expect(try transform(records, sniffed) { "[\"\($0)\", 8]" } == "8\n8\n")
        let byName = try TransformRecordSettings(splitType: .line, assembleWith: .line, outputFilter: "$.a")
        expectError(.validationError, "selects by name, but the output of record 1 is CSV") {
            _ = try transform(records, byName) { "\($0),7" }
        }
    }

    @Test("a joined input that is not JSON, or a filter that does not fit the joined record, names the record")
    func joinErrors() throws {
        let settings = try TransformRecordSettings(
            splitType: .line, contentType: "application/json", accept: "application/json", assembleWith: .line,
            joinSource: .input)
        expectError(.validationError, "JoinSource Input needs JSON records", "record 2 is not valid JSON") {
            _ = try transform(unit("{}\n{x\n"), settings) { _ in "1" }
        }
        let filtered = try TransformRecordSettings(
            splitType: .line, contentType: "text/csv", accept: "text/csv", assembleWith: .line, joinSource: .input,
            outputFilter: "$[5]")
        expectError(.validationError, "DataProcessing.OutputFilter \"$[5]\" does not fit record 1", "4 columns") {
            _ = try transform(unit("a,b\n"), filtered) { _ in "x,y" }
        }
    }
}

@Suite("TransformRecordSettings")
struct TransformRecordSettingsTests {
    @Test("a job spec's settings are taken and $ filters dropped")
    func fromSpec() throws {
        let spec = TransformJobSpec(
            name: "job", modelName: "m", inputUri: "s3://in/", contentType: "text/csv", splitType: .line,
            outputPath: "s3://out/", accept: "text/csv", assembleWith: .line, inputFilter: "$", outputFilter: "$[0,-1]",
            joinSource: .input)
        let settings = try TransformRecordSettings(spec: spec)
        #expect(settings.inputFilter == nil)
        #expect(settings.outputFilter?.expression == "$[0,-1]")
        #expect(settings.maxPayloadBytes == 6 * 1_048_576)
    }

    @Test("combinations SageMaker refuses are refused naming the field")
    func refused() {
        expectError(.validationError, "DataProcessing: ", "RecordIO records are binary") {
            _ = try TransformRecordSettings(splitType: .recordIO, contentType: "application/json", joinSource: .input)
        }
        expectError(.validationError, "TransformInput.ContentType: ", "application/x-image") {
            _ = try TransformRecordSettings(splitType: .line, contentType: "application/x-image", inputFilter: "$[1:]")
        }
        expectError(.validationError, "TransformInput.ContentType: ") {
            _ = try TransformRecordSettings(splitType: .line, joinSource: .input)
        }
        expectError(.validationError, "TransformInput.SplitType: ", "SplitType Line") {
            _ = try TransformRecordSettings(splitType: .none, contentType: "text/csv", inputFilter: "$[1:]")
        }
        expectError(.validationError, "DataProcessing.InputFilter: ", "\"$.a\" selects by name") {
            _ = try TransformRecordSettings(splitType: .line, contentType: "text/csv", inputFilter: "$.a")
        }
        expectError(.validationError, "DataProcessing.OutputFilter: ") {
            _ = try TransformRecordSettings(
                splitType: .line, contentType: "text/csv", joinSource: .input, outputFilter: "$['id']")
        }
        expectError(.validationError, "TransformOutput.Accept: ") {
            _ = try TransformRecordSettings(splitType: .line, accept: "image/png", outputFilter: "$[0]")
        }
        expectError(.validationError, "DataProcessing.OutputFilter \"$[\" is not a supported JSONPath") {
            _ = try TransformRecordSettings(splitType: .line, outputFilter: "$[")
        }
    }

    @Test("without data processing any split type and media type is fine")
    func plain() throws {
        for split in TransformSplitType.allCases {
            _ = try TransformRecordSettings(
                splitType: split, contentType: "application/x-recordio", accept: "application/x-protobuf")
        }
        _ = try TransformRecordSettings(
            splitType: .none, contentType: "application/json", joinSource: .input, outputFilter: "$.a")
    }
}
