public import ServalCore

/// One request body for the model: consecutive records of one unit.
public struct TransformPayload: Sendable, Equatable {
    /// The body: the records' payload forms one after another (for `Line`, each line ending in `\n`). Without an
    /// input filter it is usually a slice of the unit's bytes, not a copy.
    public let bytes: ArraySlice<UInt8>
    /// The records' positions in the unit (``UnitRecords/ranges``).
    public let records: Range<Int>
    /// The first record's index within the object (0-based).
    public let firstRecord: Int

    /// Creates a payload.
    public init(bytes: ArraySlice<UInt8>, records: Range<Int>, firstRecord: Int) {
        self.bytes = bytes
        self.records = records
        self.firstRecord = firstRecord
    }

    /// How many records it holds.
    public var recordCount: Int { records.count }
}

/// Groups a unit's records into payloads: `SingleRecord`, one record each; `MultiRecord`, as many consecutive
/// records as fit in `maxPayloadBytes`. A record's payload form is its line followed by `\n` (`Line`), its framed
/// bytes (`RecordIO`, `TFRecord`) or the whole unit (`None`).
///
/// With an `InputFilter`, each record is filtered first: a CSV row becomes its selected fields (raw, as they came)
/// joined by commas; a JSON record becomes the selected value written compactly. The filtered forms are what must
/// fit in `maxPayloadBytes`.
public struct PayloadBuilder: Sendable {
    /// The settings applied.
    public let settings: TransformRecordSettings

    /// Creates a builder.
    public init(settings: TransformRecordSettings) {
        self.settings = settings
    }

    /// The payloads of `unit`, in record order, covering every record once.
    ///
    /// - Throws: ``ServalError/Code/validationError`` for a record the input filter does not fit or cannot read,
    ///   or one larger than `maxPayloadBytes`, naming the record.
    public func payloads(for unit: UnitRecords) throws(ServalError) -> [TransformPayload] {
        guard unit.count > 0 else { return [] }
        if let filter = settings.inputFilter { return try filteredPayloads(unit, filter: filter) }
        let newline = unit.splitType == .line ? 1 : 0
        let limit = settings.batchStrategy == .singleRecord ? 0 : settings.maxPayloadBytes
        var payloads: [TransformPayload] = []
        var groupStart = 0
        var groupSize = 0
        for position in 0..<unit.count {
            let size = unit.ranges[position].count + newline
            if size > settings.maxPayloadBytes {
                throw ServalError(
                    .validationError,
                    RecordScanner.tooLargeMessage(
                        "record \(unit.firstRecord + position + 1)", size, limit: settings.maxPayloadBytes))
            }
            if position > groupStart, groupSize + size > limit {
                payloads.append(payload(unit, groupStart..<position))
                groupStart = position
                groupSize = 0
            }
            groupSize += size
        }
        payloads.append(payload(unit, groupStart..<unit.count))
        return payloads
    }

    /// The unfiltered payload of `group`: a slice of the unit when its records are contiguous in it.
    private func payload(_ unit: UnitRecords, _ group: Range<Int>) -> TransformPayload {
        let ranges = unit.ranges
        let start = ranges[group.lowerBound].lowerBound
        let last = ranges[group.upperBound - 1]
        let firstRecord = unit.firstRecord + group.lowerBound
        guard unit.splitType == .line else {
            return TransformPayload(
                bytes: unit.bytes[start..<last.upperBound], records: group, firstRecord: firstRecord)
        }
        // Lines are contiguous when each ends in a bare `\n` directly followed by the next.
        var contiguous = last.upperBound < unit.bytes.count && unit.bytes[last.upperBound] == 0x0A
        var position = group.lowerBound
        while contiguous, position + 1 < group.upperBound {
            contiguous = ranges[position].upperBound + 1 == ranges[position + 1].lowerBound
            position += 1
        }
        if contiguous {
            return TransformPayload(
                bytes: unit.bytes[start...last.upperBound], records: group, firstRecord: firstRecord)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(last.upperBound + 1 - start)
        for position in group {
            bytes.append(contentsOf: unit.bytes[ranges[position]])
            bytes.append(0x0A)
        }
        return TransformPayload(bytes: bytes[...], records: group, firstRecord: firstRecord)
    }

    private func filteredPayloads(_ unit: UnitRecords, filter: JSONPath) throws(ServalError) -> [TransformPayload] {
        let csv = settings.inputKind == .csv
        let newline = unit.splitType == .line
        let limit = settings.batchStrategy == .singleRecord ? 0 : settings.maxPayloadBytes
        var payloads: [TransformPayload] = []
        var current: [UInt8] = []
        var currentStart = 0
        var columns = ColumnScratch()
        for position in 0..<unit.count {
            let record = unit.firstRecord + position
            let mark = current.count
            if csv {
                try writeColumns(of: unit[position], filter: filter, record: record, columns: &columns, to: &current)
            } else {
                let value = try JSONValue(parsing: unit[position], record: record, for: filter)
                try filter.select(in: value, record: record).write(to: &current)
            }
            if newline { current.append(0x0A) }
            let size = current.count - mark
            if size > settings.maxPayloadBytes {
                throw ServalError(
                    .validationError,
                    RecordScanner.tooLargeMessage(
                        "record \(record + 1) after DataProcessing.InputFilter", size, limit: settings.maxPayloadBytes))
            }
            if position > currentStart, current.count > limit {
                let tail = Array(current[mark...])
                current.removeLast(size)
                payloads.append(
                    TransformPayload(
                        bytes: current[...], records: currentStart..<position,
                        firstRecord: unit.firstRecord + currentStart))
                current = tail
                currentStart = position
            }
        }
        payloads.append(
            TransformPayload(
                bytes: current[...], records: currentStart..<unit.count, firstRecord: unit.firstRecord + currentStart))
        return payloads
    }
}

/// Reused buffers for selecting CSV columns: the row's field ranges, and the selected positions for the last field
/// count seen (rows of a file usually all have the same count).
struct ColumnScratch {
    var fields: [Range<Int>] = []
    var count = -1
    var positions: [Int] = []
}

/// Writes the columns of a CSV row that `filter` selects, raw and joined by commas.
func writeColumns(
    of row: ArraySlice<UInt8>, filter: JSONPath, record: Int, columns: inout ColumnScratch, to output: inout [UInt8]
) throws(ServalError) {
    do throws(ServalError) {
        try CSVRow.fields(of: row, into: &columns.fields)
    } catch {
        throw ServalError(
            .validationError,
            "\(filter.field) \"\(filter.expression)\" cannot read record \(record + 1): \(error.message)")
    }
    if columns.fields.count != columns.count {
        columns.positions = try filter.selectColumns(count: columns.fields.count, record: record)
        columns.count = columns.fields.count
    }
    for (position, column) in columns.positions.enumerated() {
        if position > 0 { output.append(UInt8(ascii: ",")) }
        output.append(contentsOf: row[columns.fields[column]])
    }
}

extension JSONValue {
    /// Parses a record that `filter` needs as JSON, naming the record if it is not JSON.
    init(parsing record: ArraySlice<UInt8>, record index: Int, for filter: JSONPath) throws(ServalError) {
        do throws(ServalError) {
            try self.init(parsing: record)
        } catch {
            throw ServalError(
                .validationError,
                "\(filter.field) \"\(filter.expression)\" needs JSON records, but record \(index + 1) is \(error.message)."
            )
        }
    }
}
