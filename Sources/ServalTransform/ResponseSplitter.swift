public import ServalCore

/// The per-record outputs found in one model response: ranges in one buffer.
public struct RecordOutputs: Sendable, Equatable, RandomAccessCollection {
    /// The bytes the outputs are ranges of: the response itself, or the outputs written one after another.
    public let bytes: ArraySlice<UInt8>
    /// Each output's range in ``bytes`` (indices of ``bytes``).
    public let ranges: [Range<Int>]

    /// Pairs a buffer with output ranges in it.
    public init(bytes: ArraySlice<UInt8>, ranges: [Range<Int>]) {
        self.bytes = bytes
        self.ranges = ranges
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { ranges.count }

    /// The output of the record at `position`: one line's bytes, without line ending.
    public subscript(position: Int) -> ArraySlice<UInt8> { bytes[ranges[position]] }
}

/// Splits a model's response to a payload of N records into exactly N outputs, one per record, each a single line
/// of bytes without line ending. Applied the same way to every payload, it makes `SingleRecord` and `MultiRecord`
/// produce the same outputs.
///
/// By the response's media type (its `Content-Type`, else the job's `Accept`):
/// - `text/csv`, `application/jsonlines` (and aliases), `text/plain`: its lines. A `\r` before `\n` is dropped;
///   empty and blank lines are skipped, as they are in the input; a trailing newline is optional.
/// - `application/json` (and `+json` types): parsed, then `{"predictions": [e1, …, eN]}` (TensorFlow Serving's and
///   SageMaker's built-in containers' shape; other members are ignored) or a bare array `[e1, …, eN]` gives its
///   elements, each written compactly; otherwise, for one record, the whole value written compactly. A
///   `"outputs"` member is not read: TensorFlow Serving uses it for columnar results, which are not per record.
/// - no media type: JSON if the whole response parses as one JSON value, lines otherwise.
/// - any other type (binary): for one record, the whole response without a trailing newline; several records
///   cannot be split.
///
/// - Throws: ``ServalError/Code/modelError`` "the model returned 3 outputs for 5 records; …", or for a JSON
///   response that does not parse.
public enum ResponseSplitter {
    /// Splits `response` into `records` outputs; see the type's rules.
    public static func split(
        _ response: ArraySlice<UInt8>, contentType: String, records: Int
    ) throws(ServalError) -> RecordOutputs {
        try split(response, kind: MediaKind(contentType), mediaType: contentType, records: records)
    }

    /// Splits `response` into `records` outputs; see the type's rules.
    public static func split(
        _ response: [UInt8], contentType: String, records: Int
    ) throws(ServalError) -> RecordOutputs {
        try split(response[...], contentType: contentType, records: records)
    }

    static func split(
        _ response: ArraySlice<UInt8>, kind: MediaKind, mediaType: String, records: Int
    ) throws(ServalError) -> RecordOutputs {
        switch kind {
        case .csv, .jsonLines, .text:
            return try lines(response, records: records)
        case .json:
            let value: JSONValue
            do throws(ServalError) {
                value = try JSONValue(parsing: response)
            } catch {
                throw ServalError(.modelError, "the model's response is declared \(mediaType) but is \(error.message).")
            }
            return try elements(of: value, records: records)
        case .unspecified:
            if let value = JSONValue.parsed(response) { return try elements(of: value, records: records) }
            return try lines(response, records: records)
        case .other:
            guard records == 1 else {
                throw ServalError(
                    .modelError,
                    "the model's \(mediaType) response cannot be split into \(records) outputs, one per record; use "
                        + "BatchStrategy SingleRecord, or ask for text/csv, application/jsonlines or application/json "
                        + "with Accept.")
            }
            var end = response.endIndex
            if end > response.startIndex, response[end - 1] == 0x0A { end -= 1 }
            if end > response.startIndex, response[end - 1] == 0x0D { end -= 1 }
            return RecordOutputs(bytes: response, ranges: [response.startIndex..<end])
        }
    }

    /// The non-blank lines of `response`, without their line endings.
    private static func lines(_ response: ArraySlice<UInt8>, records: Int) throws(ServalError) -> RecordOutputs {
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(records)
        var lineStart = response.startIndex
        var blank = true
        var index = response.startIndex
        func endLine(at end: Int) {
            guard !blank else { return }
            let contentEnd = end > lineStart && response[end - 1] == 0x0D ? end - 1 : end
            ranges.append(lineStart..<contentEnd)
        }
        while index < response.endIndex {
            let byte = response[index]
            if byte == 0x0A {
                endLine(at: index)
                lineStart = index + 1
                blank = true
            } else if blank, !(byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0B || byte == 0x0C) {
                blank = false
            }
            index += 1
        }
        endLine(at: response.endIndex)
        guard ranges.count == records else { throw mismatch(ranges.count, records) }
        return RecordOutputs(bytes: response, ranges: ranges)
    }

    /// The per-record elements of a JSON response, written compactly.
    private static func elements(of value: JSONValue, records: Int) throws(ServalError) -> RecordOutputs {
        let elements: [JSONValue]
        if case .array(let predictions)? = value["predictions"], predictions.count == records {
            elements = predictions
        } else if case .array(let array) = value, array.count == records {
            elements = array
        } else if records == 1 {
            elements = [value]
        } else if case .array(let predictions)? = value["predictions"] {
            throw mismatch(predictions.count, records)
        } else if case .array(let array) = value {
            throw mismatch(array.count, records)
        } else {
            throw mismatch(1, records)
        }
        var bytes: [UInt8] = []
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(records)
        for element in elements {
            let start = bytes.count
            element.write(to: &bytes)
            ranges.append(start..<bytes.count)
        }
        return RecordOutputs(bytes: bytes[...], ranges: ranges)
    }

    private static func mismatch(_ outputs: Int, _ records: Int) -> ServalError {
        ServalError(
            .modelError,
            "the model returned \(outputs) output\(outputs == 1 ? "" : "s") for \(records) record\(records == 1 ? "" : "s"); "
                + "a response must hold one output per record: a line each for text/csv and application/jsonlines, or "
                + "a JSON array or {\"predictions\": [...]} of \(records) element\(records == 1 ? "" : "s") for "
                + "application/json.")
    }
}
