public import ServalCore

/// The records of one unit held in memory: the unit's bytes and each record's range in them.
public struct UnitRecords: Sendable, Equatable {
    /// The unit's bytes (index 0 is the unit's first byte).
    public let bytes: [UInt8]
    /// The split type the records were found with.
    public let splitType: TransformSplitType
    /// Each record's range in ``bytes``: a line without its `\r\n` or `\n`; a RecordIO or TFRecord record with its
    /// framing (all frames of a multipart RecordIO record); for `None`, all the bytes.
    public let ranges: [Range<Int>]
    /// The index of the unit's first record within its object (0-based), from ``TransformUnit/firstRecord``.
    public let firstRecord: Int

    /// Pairs bytes with record ranges found in them.
    public init(bytes: [UInt8], splitType: TransformSplitType, ranges: [Range<Int>], firstRecord: Int) {
        self.bytes = bytes
        self.splitType = splitType
        self.ranges = ranges
        self.firstRecord = firstRecord
    }

    /// How many records the unit holds.
    public var count: Int { ranges.count }

    /// The bytes of the record at `position` (0 ..< ``count``): a line without its line ending, or a framed record
    /// with its framing.
    public subscript(position: Int) -> ArraySlice<UInt8> { bytes[ranges[position]] }
}

/// Finds the records of one unit held in memory, by the same framing rules as ``UnitPlanner`` (one
/// implementation serves both):
///
/// - `Line`: a record is a line without its `\n` and without a `\r` just before it (or before the end); empty and
///   blank lines (spaces, tabs, `\r`, `\u{0B}`, `\u{0C}`) are not records; the last line needs no `\n`. Its payload
///   form is the line followed by `\n`.
/// - `RecordIO` and `TFRecord`: a record keeps its framing, which is its payload form (SageMaker sends framed
///   records). A multipart RecordIO record is one record made of all its frames.
/// - `None`: all the bytes are one record (none if there are no bytes), sent unchanged.
public struct RecordSplitter: Sendable {
    /// The split type applied.
    public let splitType: TransformSplitType

    /// Creates a splitter.
    public init(splitType: TransformSplitType) {
        self.splitType = splitType
    }

    /// Finds the records in `bytes`, the whole of one unit; `firstRecord` is the unit's
    /// ``TransformUnit/firstRecord``. Throws on broken framing (the planner has already checked it for the same
    /// bytes, so this means the object changed since planning).
    public func split(_ bytes: [UInt8], firstRecord: Int = 0) throws(ServalError) -> UnitRecords {
        var scanner = RecordScanner(splitType: splitType, maxRecordBytes: Int.max)
        var collector = Collector()
        var failure: ServalError?
        bytes.withUnsafeBytes { buffer in
            do throws(ServalError) {
                try scanner.scan(buffer, into: &collector)
                try scanner.finish(into: &collector)
            } catch { failure = error }
        }
        if let failure { throw failure }
        return UnitRecords(bytes: bytes, splitType: splitType, ranges: collector.ranges, firstRecord: firstRecord)
    }

    private struct Collector: RecordSink {
        var ranges: [Range<Int>] = []

        mutating func take(_ record: ScannedRecord, index: Int) throws(ServalError) {
            ranges.append(record.start..<record.contentEnd)
        }
    }
}
