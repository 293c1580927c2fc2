public import ServalCore

/// Turns the model's response to one payload into the bytes appended to its unit's output part. Parts are
/// concatenated in part order into the object's `.out`.
///
/// 1. No `JoinSource` and no `OutputFilter`:
///    - `AssembleWith None`: the response, unchanged (SageMaker concatenates results "in binary format").
///    - `AssembleWith Line`: one line per record, each output followed by `\n`, after ``ResponseSplitter`` split
///      the response; so `SingleRecord` and `MultiRecord` write the same lines. When the response cannot be split
///      (split type `None`, whose object is one record; or a binary media type) it is written whole, followed by
///      `\n` unless it ends with one.
/// 2. `JoinSource Input` or an `OutputFilter`: the response is split into one output per record; each output is
///    joined with its input record (``RecordJoiner``) and/or filtered (the joined record, or the output alone:
///    CSV when `Accept` is `text/csv`, JSON for JSON types; without a media type, JSON if it starts with `[` or `{`
///    and parses, CSV otherwise), then written: a CSV row as raw fields joined by commas, JSON compactly. Then
///    `AssembleWith Line` ends each with `\n`; `AssembleWith None` puts them one after another with no separator,
///    as SageMaker does (ask for `Line` to get one record per line).
public struct OutputAssembler: Sendable {
    /// The settings applied.
    public let settings: TransformRecordSettings

    /// Creates an assembler.
    public init(settings: TransformRecordSettings) {
        self.settings = settings
    }

    /// Appends what `response` contributes to the output to `output`.
    ///
    /// - Parameters:
    ///   - response: the model's response body for `payload`.
    ///   - contentType: the response's `Content-Type`; empty if the model gave none, and then the job's `Accept`
    ///     decides (and if that is empty too, the bytes do).
    ///   - payload: the payload the model answered.
    ///   - unit: the unit the payload was built from (its records are the join's inputs).
    /// - Throws: ``ServalError/Code/modelError`` when the response does not hold one output per record (naming the
    ///   records) or is not the JSON it claims to be; ``ServalError/Code/validationError`` when a record or output
    ///   does not fit the output filter, or a joined input cannot be read.
    public func append(
        response: ArraySlice<UInt8>, contentType: String, for payload: TransformPayload, of unit: UnitRecords,
        to output: inout [UInt8]
    ) throws(ServalError) {
        let mediaType = contentType.isEmpty ? settings.accept : contentType
        let kind = MediaKind(mediaType)
        let perRecord = settings.joinSource == .input || settings.outputFilter != nil
        guard perRecord || settings.assembleWith == .line else {
            output.append(contentsOf: response)
            return
        }
        if !perRecord, settings.splitType == .none || kind == .other {
            output.append(contentsOf: response)
            if response.last != 0x0A { output.append(0x0A) }
            return
        }
        let outputs: RecordOutputs
        do throws(ServalError) {
            outputs = try ResponseSplitter.split(
                response, kind: kind, mediaType: mediaType, records: payload.recordCount)
        } catch {
            let first = payload.firstRecord + 1
            let records =
                payload.recordCount == 1 ? "record \(first)" : "records \(first) to \(first + payload.recordCount - 1)"
            throw ServalError(error.code, "for \(records): \(error.message)")
        }
        let newline = settings.assembleWith == .line
        guard perRecord else {
            for position in outputs.indices {
                output.append(contentsOf: outputs[position])
                if newline { output.append(0x0A) }
            }
            return
        }
        var scratch: [UInt8] = []
        var columns = ColumnScratch()
        for position in outputs.indices {
            let record = payload.firstRecord + position
            if settings.joinSource == .input {
                try appendJoined(
                    input: unit[payload.records.lowerBound + position], output: outputs[position], record: record,
                    scratch: &scratch, columns: &columns, to: &output)
            } else if let filter = settings.outputFilter {
                try appendFiltered(
                    outputs[position], kind: kind, filter: filter, record: record, columns: &columns, to: &output)
            }
            if newline { output.append(0x0A) }
        }
    }

    /// Appends `response`'s contribution; see ``append(response:contentType:for:of:to:)``.
    public func append(
        response: [UInt8], contentType: String, for payload: TransformPayload, of unit: UnitRecords,
        to output: inout [UInt8]
    ) throws(ServalError) {
        try append(response: response[...], contentType: contentType, for: payload, of: unit, to: &output)
    }

    private func appendJoined(
        input: ArraySlice<UInt8>, output recordOutput: ArraySlice<UInt8>, record: Int, scratch: inout [UInt8],
        columns: inout ColumnScratch, to output: inout [UInt8]
    ) throws(ServalError) {
        if settings.inputKind == .csv {
            scratch.removeAll(keepingCapacity: true)
            RecordJoiner.joinCSV(input: input, output: recordOutput, to: &scratch)
            if let filter = settings.outputFilter {
                try writeColumns(of: scratch[...], filter: filter, record: record, columns: &columns, to: &output)
            } else {
                output.append(contentsOf: scratch)
            }
            return
        }
        let value: JSONValue
        do throws(ServalError) {
            value = try JSONValue(parsing: input)
        } catch {
            throw ServalError(
                .validationError,
                "DataProcessing.JoinSource Input needs JSON records with ContentType \(settings.contentType), but "
                    + "record \(record + 1) is \(error.message).")
        }
        var joined = RecordJoiner.join(input: value, output: recordOutput)
        if let filter = settings.outputFilter { joined = try filter.select(in: joined, record: record) }
        joined.write(to: &output)
    }

    private func appendFiltered(
        _ recordOutput: ArraySlice<UInt8>, kind: MediaKind, filter: JSONPath, record: Int, columns: inout ColumnScratch,
        to output: inout [UInt8]
    ) throws(ServalError) {
        let json: Bool
        switch kind {
        case .json, .jsonLines: json = true
        case .csv: json = false
        case .text, .other, .unspecified:
            let first = recordOutput.first { !($0 == 0x20 || $0 == 0x09) }
            json = (first == UInt8(ascii: "[") || first == UInt8(ascii: "{")) && JSONValue.parsed(recordOutput) != nil
        }
        guard json else {
            guard filter.selectsColumns else {
                throw ServalError(
                    .validationError,
                    "\(filter.field) \"\(filter.expression)\" selects by name, but the output of record \(record + 1) "
                        + "is CSV; select columns (\"$[0]\", \"$[1:]\") or ask for JSON with Accept.")
            }
            try writeColumns(of: recordOutput, filter: filter, record: record, columns: &columns, to: &output)
            return
        }
        let value: JSONValue
        do throws(ServalError) {
            value = try JSONValue(parsing: recordOutput)
        } catch {
            throw ServalError(
                .modelError, "the model's output for record \(record + 1) should be JSON but is \(error.message).")
        }
        try filter.select(in: value, record: record).write(to: &output)
    }
}
