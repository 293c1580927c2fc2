import ServalCore
import ServalTransform
import ServalFuzzSupport
import Testing

/// The error a closure throws, or `nil` when it passes.
func failure(_ body: () throws -> Void) -> ServalError? {
    do {
        try body()
        return nil
    } catch let error as ServalError {
        return error
    } catch {
        Issue.record("expected a ServalError, got \(error)")
        return ServalError(.internalFailure, "\(error)")
    }
}

/// Expects `body` to throw a ServalError with `code` whose message contains every one of `fragments`.
func expectError(
    _ code: ServalError.Code, _ fragments: String..., sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) {
    guard let error = failure(body) else {
        Issue.record("no error; expected \(code.rawValue) mentioning \(fragments)", sourceLocation: sourceLocation)
        return
    }
    #expect(error.code == code, "message: \(error.message)", sourceLocation: sourceLocation)
    for fragment in fragments {
        #expect(error.message.contains(fragment), "message: \(error.message)", sourceLocation: sourceLocation)
    }
}

/// Plans `bytes` fed in chunks of the given sizes (cycled), taking completed units as it goes when `streaming`.
func plan(
    _ bytes: [UInt8], splitType: TransformSplitType, max: Int, chunkSizes: [Int] = [Int.max], streaming: Bool = false
) throws -> [TransformUnit] {
    var planner = UnitPlanner(splitType: splitType, maxPayloadBytes: max, objectIndex: 7)
    var units: [TransformUnit] = []
    var offset = 0
    var next = 0
    while offset < bytes.count {
        let size = Swift.min(chunkSizes[next % chunkSizes.count], bytes.count - offset)
        next += 1
        try planner.consume(Array(bytes[offset..<offset + size]))
        offset += size
        if streaming { units += planner.takeCompletedUnits() }
    }
    units += try planner.finish()
    #expect(planner.bytesConsumed == Int64(bytes.count))
    #expect(planner.recordCount == units.reduce(0) { $0 + $1.records })
    return units
}

/// Plans `bytes` whole, byte at a time, in random chunkings and streaming; expects the same units every way and
/// checks the units' invariants against the splitter. Returns the units.
func planEveryWay(_ bytes: [UInt8], splitType: TransformSplitType, max: Int) throws -> [TransformUnit] {
    let whole = try plan(bytes, splitType: splitType, max: max)
    #expect(try plan(bytes, splitType: splitType, max: max, chunkSizes: [1]) == whole)
    var random = SeededGenerator(seed: UInt64(bytes.count))
    for _ in 0..<5 {
        let sizes = (0..<16).map { _ in Int.random(in: 1...Swift.max(1, bytes.count / 3 + 1), using: &random) }
        #expect(try plan(bytes, splitType: splitType, max: max, chunkSizes: sizes) == whole)
        #expect(try plan(bytes, splitType: splitType, max: max, chunkSizes: sizes, streaming: true) == whole)
    }
    try checkUnits(whole, of: bytes, splitType: splitType, max: max)
    return whole
}

/// Units cover the object contiguously; their records are whole, counted right, and fit in `max`.
func checkUnits(
    _ units: [TransformUnit], of bytes: [UInt8], splitType: TransformSplitType, max: Int,
    sourceLocation: SourceLocation = #_sourceLocation
) throws {
    #expect(units.first?.start == 0, sourceLocation: sourceLocation)
    #expect(units.last?.end == Int64(bytes.count), sourceLocation: sourceLocation)
    var firstRecord = 0
    for (part, unit) in units.enumerated() {
        #expect(unit.part == part && unit.objectIndex == 7, sourceLocation: sourceLocation)
        if part > 0 { #expect(unit.start == units[part - 1].end, sourceLocation: sourceLocation) }
        #expect(unit.firstRecord == firstRecord, sourceLocation: sourceLocation)
        let records = try RecordSplitter(splitType: splitType).split(
            Array(bytes[Int(unit.start)..<Int(unit.end)]), firstRecord: unit.firstRecord)
        #expect(records.count == unit.records, sourceLocation: sourceLocation)
        let payload = records.ranges.reduce(0) { $0 + $1.count + (splitType == .line ? 1 : 0) }
        #expect(payload <= max, sourceLocation: sourceLocation)
        firstRecord += unit.records
    }
}

/// Bytes of a string.
func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// A string of bytes.
func text(_ bytes: some Sequence<UInt8>) -> String { String(decoding: Array(bytes), as: UTF8.self) }

/// One MXNet RecordIO frame: magic, flag and length, data, zero padding to 4 bytes.
func recordIOFrame(_ data: [UInt8], flag: UInt32 = 0) -> [UInt8] {
    let word = flag << 29 | UInt32(data.count)
    var frame = withUnsafeBytes(of: UInt32(0xCED7_230A).littleEndian, Array.init)
    frame += withUnsafeBytes(of: word.littleEndian, Array.init)
    frame += data
    frame += [UInt8](repeating: 0, count: (4 - data.count % 4) % 4)
    return frame
}

/// CRC-32C computed bit by bit (independent of the module's table-driven one).
func crc32c(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }
    return ~crc
}

func maskedCRC(_ bytes: [UInt8]) -> UInt32 {
    let crc = crc32c(bytes)
    return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
}

/// One TFRecord frame: length, its masked CRC, data, the data's masked CRC.
func tfRecordFrame(_ data: [UInt8]) -> [UInt8] {
    let length = withUnsafeBytes(of: UInt64(data.count).littleEndian, Array.init)
    return length + withUnsafeBytes(of: maskedCRC(length).littleEndian, Array.init) + data
        + withUnsafeBytes(of: maskedCRC(data).littleEndian, Array.init)
}
