import ServalCore
import ServalTransform
import ServalFuzzSupport
import Testing

@Suite("UnitPlanner: Line")
struct UnitPlannerLineTests {
    @Test("units end after whole lines and hold at most the maximum payload, however the bytes are chunked")
    func boundaries() throws {
        // Each record is "rN" + "\n" = 3 bytes (4 from r10 on). With max 9: three records per unit.
        let csv = bytes((1...12).map { "r\($0)\n" }.joined())
        let units = try planEveryWay(csv, splitType: .line, max: 9)
        #expect(units.map(\.records) == [3, 3, 3, 2, 1])
        #expect(units.map(\.firstRecord) == [0, 3, 6, 9, 11])
        #expect(units.map(\.start) == [0, 9, 18, 27, 35])
        #expect(units.map(\.end) == [9, 18, 27, 35, 39])
    }

    @Test("a unit fits the maximum exactly, newline included")
    func exactFit() throws {
        let units = try planEveryWay(bytes("abcd\nefgh\nij\n"), splitType: .line, max: 5)
        #expect(units.map(\.records) == [1, 1, 1])
        let two = try planEveryWay(bytes("ab\ncd\nef\n"), splitType: .line, max: 6)
        #expect(two.map(\.records) == [2, 1])
    }

    @Test("CRLF: the \\r is not part of the record, so it does not count toward the payload")
    func crlf() throws {
        let data = bytes("ab\r\ncd\r\nef\r\n")
        let units = try planEveryWay(data, splitType: .line, max: 6)
        #expect(units.map(\.records) == [2, 1])
        #expect(units.map(\.end) == [8, 12])
        let records = try RecordSplitter(splitType: .line).split(data)
        #expect(records.ranges.map { text(data[$0]) } == ["ab", "cd", "ef"])
    }

    @Test("empty and blank lines are not records but their bytes belong to a unit")
    func blankLines() throws {
        let data = bytes("\n  \n\ta\n\r\n\n \t\r\nb\n\n\n")
        let units = try planEveryWay(data, splitType: .line, max: 3)
        #expect(units.map(\.records) == [1, 1])
        #expect(units.map(\.start) == [0, 7])
        #expect(units.last?.end == Int64(data.count))
        let records = try RecordSplitter(splitType: .line).split(data)
        #expect(records.ranges.map { text(data[$0]) } == ["\ta", "b"])
    }

    @Test("a last line without \\n is a record; a last \\r is dropped with it", arguments: ["a\nbc", "a\nbc\r"])
    func lastLine(input: String) throws {
        let data = bytes(input)
        let units = try planEveryWay(data, splitType: .line, max: 100)
        #expect(units.map(\.records) == [2])
        let records = try RecordSplitter(splitType: .line).split(data)
        #expect(records.ranges.map { text(data[$0]) } == ["a", "bc"])
    }

    @Test("an object with no records is one unit without records", arguments: ["", "\n", " \r\n\t\n"])
    func noRecords(input: String) throws {
        let units = try planEveryWay(bytes(input), splitType: .line, max: 10)
        #expect(
            units == [
                TransformUnit(
                    objectIndex: 7, part: 0, start: 0, end: Int64(input.utf8.count), records: 0, firstRecord: 0)
            ])
    }

    @Test("a line longer than the maximum names its record, line, size and the limit")
    func oversize() throws {
        let data = bytes("a\n\nbb\n" + String(repeating: "x", count: 12) + "\nc\n")
        for chunk in [1, 3, 100] {
            expectError(.validationError, "record 3 (line 4)", "13 bytes", "12 bytes") {
                _ = try plan(data, splitType: .line, max: 12, chunkSizes: [chunk])
            }
        }
        // The limit in MB when it is whole megabytes.
        let big = [UInt8](repeating: 0x61, count: TransformLimits.bytesPerMB) + [0x0A]
        expectError(.validationError, "record 1 (line 1)", "1048577 bytes", "MaxPayloadInMB 1") {
            _ = try plan(big, splitType: .line, max: TransformLimits.bytesPerMB)
        }
        // A last line without newline counts its newline too.
        expectError(.validationError, "record 1 (line 1)") { _ = try plan(bytes("abc"), splitType: .line, max: 3) }
    }

    @Test("many rows are planned in one pass into units of about the maximum")
    func manyRows() throws {
        let row = bytes("123456,0.5,x\n")
        let data = Array([[UInt8]](repeating: row, count: 200_000).joined())
        var planner = UnitPlanner(splitType: .line, maxPayloadBytes: TransformLimits.bytesPerMB / 4, objectIndex: 7)
        try planner.consume(data)
        let units = try planner.finish()
        #expect(units.reduce(0) { $0 + $1.records } == 200_000)
        let limit = TransformLimits.bytesPerMB / 4
        let fewest = (data.count + limit - 1) / limit
        #expect(units.count == fewest || units.count == fewest + 1)
        #expect(units.allSatisfy { $0.end - $0.start <= Int64(limit) })
    }
}

@Suite("UnitPlanner: None and gzip")
struct UnitPlannerWholeTests {
    @Test("split type None makes one unit of one record")
    func none() throws {
        let units = try planEveryWay(bytes("a\nb\n\nc"), splitType: .none, max: 10)
        #expect(units == [TransformUnit(objectIndex: 7, part: 0, start: 0, end: 6, records: 1, firstRecord: 0)])
        #expect(try planEveryWay([], splitType: .none, max: 10).map(\.records) == [0])
    }

    @Test("with None the whole object must fit in the maximum payload")
    func noneTooLarge() {
        expectError(.validationError, "the object", "SplitType None", "10 bytes") {
            _ = try plan([UInt8](repeating: 1, count: 11), splitType: .none, max: 10, chunkSizes: [4])
        }
    }

    @Test("a gzip object is one unit of the stored size with the records counted in its decompressed bytes")
    func wholeObject() throws {
        var planner = UnitPlanner(splitType: .line, maxPayloadBytes: 4, objectIndex: 3)
        try planner.consume(bytes("a\nb\nc\n"))
        let ranges = try planner.finish()
        #expect(ranges.count == 2)
        let unit = UnitPlanner.wholeObjectUnit(objectIndex: 3, storedSize: 40, records: planner.recordCount)
        #expect(unit == TransformUnit(objectIndex: 3, part: 0, start: 0, end: 40, records: 3, firstRecord: 0))
    }
}

@Suite("UnitPlanner: RecordIO")
struct UnitPlannerRecordIOTests {
    @Test("records keep their framing and padding; units end between frames")
    func frames() throws {
        let data =
            recordIOFrame(bytes("hello")) + recordIOFrame([]) + recordIOFrame(bytes("abcd"))
            + recordIOFrame(bytes("xyz"))
        // Frame sizes: 16, 8, 12, 12.
        let units = try planEveryWay(data, splitType: .recordIO, max: 24)
        #expect(units.map(\.records) == [2, 2])
        #expect(units.map(\.end) == [24, 48])
        let records = try RecordSplitter(splitType: .recordIO).split(data)
        #expect(records.ranges == [0..<16, 16..<24, 24..<36, 36..<48])
    }

    @Test("a multipart record (flags 1, 2, 3) is one logical record")
    func multipart() throws {
        let record =
            recordIOFrame(bytes("ab"), flag: 1) + recordIOFrame(bytes("cdefg"), flag: 2)
            + recordIOFrame(bytes("h"), flag: 3)
        let data = recordIOFrame(bytes("x")) + record + recordIOFrame(bytes("y"))
        let units = try planEveryWay(data, splitType: .recordIO, max: 100)
        #expect(units.map(\.records) == [3])
        let records = try RecordSplitter(splitType: .recordIO).split(data)
        #expect(records.ranges == [0..<12, 12..<(12 + record.count), (12 + record.count)..<data.count])
        // Its size is all its frames: 12 + 16 + 12 = 40.
        expectError(.validationError, "record 2 (at byte 12)", "40 bytes") {
            _ = try plan(data, splitType: .recordIO, max: 39, chunkSizes: [1])
        }
        #expect(try plan(data, splitType: .recordIO, max: 40).map(\.records) == [1, 1, 1])
    }

    @Test("broken framing names the byte offset", arguments: [1, 5, 1000])
    func corrupt(chunk: Int) {
        let good = recordIOFrame(bytes("abc"))
        var badMagic = good + good
        badMagic[12] ^= 0xFF
        expectError(.validationError, "byte 12", "magic number", "0xced7230a") {
            _ = try plan(badMagic, splitType: .recordIO, max: 100, chunkSizes: [chunk])
        }
        expectError(.validationError, "ends at byte 14", "starts at byte 12") {
            _ = try plan(good + good.prefix(2), splitType: .recordIO, max: 100, chunkSizes: [chunk])
        }
        expectError(.validationError, "continues a record", "byte 12") {
            _ = try plan(good + recordIOFrame(bytes("z"), flag: 3), splitType: .recordIO, max: 100, chunkSizes: [chunk])
        }
        expectError(.validationError, "record at byte 0", "byte 12") {
            _ = try plan(recordIOFrame(bytes("a"), flag: 1) + good, splitType: .recordIO, max: 100, chunkSizes: [chunk])
        }
        expectError(.validationError, "ends at byte 12", "starts at byte 0") {
            _ = try plan(recordIOFrame(bytes("a"), flag: 1), splitType: .recordIO, max: 100, chunkSizes: [chunk])
        }
        expectError(.validationError, "flag 5") {
            _ = try plan(recordIOFrame(bytes("a"), flag: 5), splitType: .recordIO, max: 100, chunkSizes: [chunk])
        }
    }
}

@Suite("UnitPlanner: TFRecord")
struct UnitPlannerTFRecordTests {
    @Test("the test's CRC-32C matches the standard check value")
    func checkValue() {
        #expect(crc32c(bytes("123456789")) == 0xE306_9283)
    }

    @Test("frames are records with both checksums verified")
    func frames() throws {
        let payloads = [bytes("a"), [UInt8](repeating: 7, count: 100), [], bytes("0123456789abcdefg")]
        let data = payloads.flatMap(tfRecordFrame)
        let units = try planEveryWay(data, splitType: .tfRecord, max: 120)
        #expect(units.map(\.records) == [1, 1, 2])
        let records = try RecordSplitter(splitType: .tfRecord).split(data)
        #expect(records.ranges.map(\.count) == [17, 116, 16, 33])
    }

    @Test("corrupt lengths, data and truncation name the offset", arguments: [1, 7, 1000])
    func corrupt(chunk: Int) {
        let good = tfRecordFrame(bytes("hello"))
        var badLength = good + good
        badLength[21 + 2] ^= 1
        expectError(.validationError, "length at byte 21", "CRC") {
            _ = try plan(badLength, splitType: .tfRecord, max: 100, chunkSizes: [chunk])
        }
        var badData = good + good
        badData[21 + 12] ^= 1
        expectError(.validationError, "record 2 (at byte 21)", "data CRC") {
            _ = try plan(badData, splitType: .tfRecord, max: 100, chunkSizes: [chunk])
        }
        expectError(.validationError, "ends at byte 31", "starts at byte 21") {
            _ = try plan(good + good.prefix(10), splitType: .tfRecord, max: 100, chunkSizes: [chunk])
        }
        expectError(.validationError, "record 2 (at byte 21)", "22 bytes", "21 bytes") {
            _ = try plan(good + tfRecordFrame(bytes("hello!")), splitType: .tfRecord, max: 21, chunkSizes: [chunk])
        }
    }
}

@Suite("UnitPlanner: random objects")
struct UnitPlannerRandomTests {
    @Test("random objects plan the same in every chunking and their units keep every invariant", arguments: 0..<20)
    func random(seed: UInt64) throws {
        var random = SeededGenerator(seed: seed)
        let max = Int.random(in: 8...64, using: &random)
        // Lines: varied lengths, CRLF, blank and whitespace lines, sometimes no final newline.
        var lines: [UInt8] = []
        for _ in 0..<Int.random(in: 0...60, using: &random) {
            switch Int.random(in: 0..<10, using: &random) {
            case 0: lines += bytes("\n")
            case 1: lines += bytes(" \t\r\n")
            default:
                lines += (0..<Int.random(in: 1...(max - 2), using: &random)).map { _ in
                    UInt8.random(in: 0x21...0x7E, using: &random)
                }
                lines += Bool.random(using: &random) ? bytes("\r\n") : bytes("\n")
            }
        }
        if Bool.random(using: &random) { lines += bytes("tail") }
        let lineUnits = try planEveryWay(lines, splitType: .line, max: max + 8)
        #expect(lineUnits.allSatisfy { $0.records > 0 } || lineUnits.count == 1)

        // RecordIO: whole and multipart records of random sizes.
        var recordIO: [UInt8] = []
        var count = 0
        for _ in 0..<Int.random(in: 0...30, using: &random) {
            let parts = Int.random(in: 1...3, using: &random)
            for part in 0..<parts {
                let data = (0..<Int.random(in: 0...9, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }
                let flag: UInt32 = parts == 1 ? 0 : part == 0 ? 1 : part == parts - 1 ? 3 : 2
                recordIO += recordIOFrame(data, flag: flag)
            }
            count += 1
        }
        let recordIOUnits = try planEveryWay(recordIO, splitType: .recordIO, max: 3 * 20)
        #expect(recordIOUnits.reduce(0) { $0 + $1.records } == count)

        // TFRecord.
        let tfRecord = (0..<Int.random(in: 0...30, using: &random)).flatMap { _ in
            tfRecordFrame(
                (0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
        }
        _ = try planEveryWay(tfRecord, splitType: .tfRecord, max: 56 + Int.random(in: 0...100, using: &random))
    }

    @Test("the raw-buffer entry point plans like the array one")
    func rawBuffer() throws {
        let data = bytes("a\nbb\nccc\n")
        var planner = UnitPlanner(splitType: .line, maxPayloadBytes: 5, objectIndex: 7)
        try data.withUnsafeBytes { buffer in
            try planner.consume(UnsafeRawBufferPointer(rebasing: buffer[0..<4]))
            try planner.consume(UnsafeRawBufferPointer(rebasing: buffer[4...]))
        }
        #expect(try planner.finish() == (try plan(data, splitType: .line, max: 5)))
    }
}
