public import ServalCore

/// Plans the work units of one input object from a single streaming read, holding no more than a few counters.
///
/// Feed the object's bytes in order with ``consume(_:)``, in chunks of any size, then call ``finish()``. The units
/// cover the object contiguously from byte 0 to its end; each ends on a record boundary (just after a record's
/// `\n`, padding or checksum; or at the object's end) and holds whole records whose payload forms (see
/// ``RecordSplitter``) total at most `maxPayloadBytes`, so that a unit is one `MultiRecord` payload when no input
/// filter applies. Bytes that are not records (empty or blank lines) belong to the unit of the record after them,
/// or to the last unit. A unit's stored range can therefore be larger than `maxPayloadBytes` by its blank lines and
/// `\r`s. An object without records is one unit with no records (`[0, size)`, possibly empty).
///
/// With split type `None` the object is one unit holding one record (none if the object is empty), and it must fit
/// in `maxPayloadBytes`.
///
/// A record larger than `maxPayloadBytes` (payload form: a line counts its `\n`) throws
/// ``ServalError/Code/validationError`` naming it ("record 12 (line 15)", or "record 12 (at byte 1024)" for framed
/// records); broken or truncated RecordIO and TFRecord framing throws naming the byte offset. Messages do not name
/// the object: prefix its key. After a throw the planner is spent.
///
/// **Gzip objects.** Feed the *decompressed* bytes: the units found are then ranges of the decompressed stream, not
/// of the stored object. Record them as one unit with ``wholeObjectUnit(objectIndex:storedSize:records:)`` and
/// ``recordCount``; when processing that unit, run a second planner over the decompressed stream and take its
/// ranges with ``takeCompletedUnits()`` as they close, to hold only about one payload in memory.
public struct UnitPlanner: Sendable {
    /// The split type the planner applies.
    public let splitType: TransformSplitType
    /// The largest total of a unit's records, and the largest record.
    public let maxPayloadBytes: Int
    /// The object's index, copied into each unit.
    public let objectIndex: Int

    private var scanner: RecordScanner
    private var units: Accumulator

    /// Creates a planner for the object with index `objectIndex`. `maxPayloadBytes` must be positive.
    public init(splitType: TransformSplitType, maxPayloadBytes: Int, objectIndex: Int) {
        precondition(maxPayloadBytes > 0, "maxPayloadBytes must be positive")
        self.splitType = splitType
        self.maxPayloadBytes = maxPayloadBytes
        self.objectIndex = objectIndex
        scanner = RecordScanner(splitType: splitType, maxRecordBytes: maxPayloadBytes)
        units = Accumulator(objectIndex: objectIndex, maxPayloadBytes: maxPayloadBytes)
    }

    /// Bytes consumed so far.
    public var bytesConsumed: Int64 { Int64(scanner.offset) }

    /// Records found so far; after ``finish()``, the object's records.
    public var recordCount: Int { scanner.count }

    /// Reads the next bytes of the object.
    public mutating func consume(_ chunk: UnsafeRawBufferPointer) throws(ServalError) {
        try scanner.scan(chunk, into: &units)
    }

    /// Reads the next bytes of the object.
    public mutating func consume(_ chunk: [UInt8]) throws(ServalError) {
        // withUnsafeBytes rethrows untyped; keep the typed error by carrying it out.
        var failure: ServalError?
        chunk.withUnsafeBytes { bytes in
            do throws(ServalError) { try scanner.scan(bytes, into: &units) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// The units that are complete so far (every unit but the one still open), in part order; each unit is
    /// returned once. Use it to process a stream while reading it; ``finish()`` returns the rest.
    public mutating func takeCompletedUnits() -> [TransformUnit] {
        defer { units.closed.removeAll(keepingCapacity: true) }
        return units.closed
    }

    /// Ends the object and returns the units not yet taken with ``takeCompletedUnits()`` (all of them if it was
    /// never called). Throws if the object ends inside a RecordIO or TFRecord frame.
    public mutating func finish() throws(ServalError) -> [TransformUnit] {
        try scanner.finish(into: &units)
        units.close(at: scanner.offset)
        return takeCompletedUnits()
    }

    /// The one unit of an object that is processed whole: a gzip object (`records` counted by planning its
    /// decompressed bytes) or any object of split type `None`.
    public static func wholeObjectUnit(objectIndex: Int, storedSize: Int64, records: Int) -> TransformUnit {
        TransformUnit(objectIndex: objectIndex, part: 0, start: 0, end: storedSize, records: records, firstRecord: 0)
    }

    /// Groups records into units as they are found.
    private struct Accumulator: RecordSink {
        let objectIndex: Int
        let maxPayloadBytes: Int
        var closed: [TransformUnit] = []
        var nextPart = 0
        var unitStart = 0
        var unitRecords = 0
        var unitPayloadBytes = 0
        var unitFirstRecord = 0
        var lastRecordEnd = 0

        init(objectIndex: Int, maxPayloadBytes: Int) {
            self.objectIndex = objectIndex
            self.maxPayloadBytes = maxPayloadBytes
        }

        mutating func take(_ record: ScannedRecord, index: Int) throws(ServalError) {
            if unitRecords > 0, unitPayloadBytes + record.payloadSize > maxPayloadBytes {
                close(at: lastRecordEnd)
                unitFirstRecord = index
            }
            unitRecords += 1
            unitPayloadBytes += record.payloadSize
            lastRecordEnd = record.end
        }

        mutating func close(at end: Int) {
            closed.append(
                TransformUnit(
                    objectIndex: objectIndex, part: nextPart, start: Int64(unitStart), end: Int64(end),
                    records: unitRecords, firstRecord: unitFirstRecord))
            nextPart += 1
            unitStart = end
            unitRecords = 0
            unitPayloadBytes = 0
        }
    }
}
