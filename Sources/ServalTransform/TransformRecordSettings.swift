public import ServalCore

/// The settings of a transform job that shape its records, payloads and outputs, checked together once.
///
/// Create it from the job's spec when the job is created (it is where `InputFilter` and `OutputFilter` are
/// parsed, and where combinations SageMaker refuses are refused) and again by each runner.
///
/// Rules (SageMaker's, where it has them):
/// - A filter of `$` selects everything and is dropped (``inputFilter`` and ``outputFilter`` are then `nil`).
/// - `InputFilter`, `OutputFilter` and `JoinSource Input` work on CSV and JSON records: split type `Line` or
///   `None`, not the binary `RecordIO` and `TFRecord`.
/// - `InputFilter` and `JoinSource Input` read the input as CSV or JSON, so `ContentType` must be `text/csv`,
///   `application/json` or `application/jsonlines` (also `application/jsonl`, `application/x-jsonlines`,
///   `application/x-ndjson`). CSV input needs split type `Line` (a record is a row), and CSV filters select columns.
/// - `OutputFilter` applies to the joined record (CSV or JSON like the input) or, without a join, to each output:
///   then `Accept` must be empty (decided from each response) or CSV or JSON.
public struct TransformRecordSettings: Sendable, Equatable {
    /// How objects are split into records.
    public let splitType: TransformSplitType
    /// How many records go into one payload.
    public let batchStrategy: TransformBatchStrategy
    /// The largest payload sent to the model, in bytes.
    public let maxPayloadBytes: Int
    /// The input records' media type (`TransformInput.ContentType`); may be empty.
    public let contentType: String
    /// The media type asked of the model (`TransformOutput.Accept`); may be empty.
    public let accept: String
    /// How outputs are put together.
    public let assembleWith: TransformAssembly
    /// Whether outputs are joined with their input records.
    public let joinSource: TransformJoinSource
    /// `DataProcessing.InputFilter`, unless absent or `$`.
    public let inputFilter: JSONPath?
    /// `DataProcessing.OutputFilter`, unless absent or `$`.
    public let outputFilter: JSONPath?
    /// The format of the input records, for filters and joins.
    let inputKind: MediaKind

    /// Takes the settings of `spec`.
    public init(spec: TransformJobSpec) throws(ServalError) {
        try self.init(
            splitType: spec.splitType, batchStrategy: spec.batchStrategy, maxPayloadBytes: spec.maxPayloadBytes,
            contentType: spec.contentType, accept: spec.accept, assembleWith: spec.assembleWith,
            joinSource: spec.joinSource, inputFilter: spec.inputFilter, outputFilter: spec.outputFilter)
    }

    /// Checks and takes settings; see the type's rules.
    ///
    /// - Throws: ``ServalError/Code/validationError`` naming the request field at fault.
    public init(
        splitType: TransformSplitType, batchStrategy: TransformBatchStrategy = .multiRecord,
        maxPayloadBytes: Int = TransformLimits.defaultMaxPayloadMB * TransformLimits.bytesPerMB,
        contentType: String = "", accept: String = "", assembleWith: TransformAssembly = .none,
        joinSource: TransformJoinSource = .none, inputFilter: String? = nil, outputFilter: String? = nil
    ) throws(ServalError) {
        guard maxPayloadBytes > 0 else { throw .invalid("MaxPayloadInMB", "must be at least 1.") }
        self.splitType = splitType
        self.batchStrategy = batchStrategy
        self.maxPayloadBytes = maxPayloadBytes
        self.contentType = contentType
        self.accept = accept
        self.assembleWith = assembleWith
        self.joinSource = joinSource
        inputKind = MediaKind(contentType)
        let input = try inputFilter.map { (text) throws(ServalError) in
            try JSONPath(text, field: "DataProcessing.InputFilter")
        }
        let output = try outputFilter.map { (text) throws(ServalError) in
            try JSONPath(text, field: "DataProcessing.OutputFilter")
        }
        self.inputFilter = input?.isRoot == true ? nil : input
        self.outputFilter = output?.isRoot == true ? nil : output

        guard self.inputFilter != nil || self.outputFilter != nil || joinSource == .input else { return }
        if splitType == .recordIO || splitType == .tfRecord {
            throw .invalid(
                "DataProcessing",
                "InputFilter, OutputFilter and JoinSource Input work on CSV and JSON records, but SplitType "
                    + "\(splitType.rawValue) records are binary; use SplitType Line or None, or leave DataProcessing out."
            )
        }
        if self.inputFilter != nil || joinSource == .input {
            guard inputKind == .csv || inputKind == .json || inputKind == .jsonLines else {
                throw .invalid(
                    "TransformInput.ContentType",
                    "is \"\(contentType)\"; DataProcessing.InputFilter and JoinSource Input need text/csv, "
                        + "application/json or application/jsonlines.")
            }
            if inputKind == .csv, splitType != .line {
                throw .invalid(
                    "TransformInput.SplitType",
                    "is None; with ContentType text/csv, DataProcessing.InputFilter and JoinSource Input need SplitType "
                        + "Line, so that each row is a record.")
            }
        }
        if inputKind == .csv, let filter = self.inputFilter, !filter.selectsColumns {
            throw TransformRecordSettings.notColumns(filter)
        }
        if let filter = self.outputFilter {
            let joinedKind = joinSource == .input ? inputKind : MediaKind(accept)
            switch joinedKind {
            case .csv:
                if !filter.selectsColumns { throw TransformRecordSettings.notColumns(filter) }
            case .json, .jsonLines, .unspecified:
                break
            case .text, .other:
                throw .invalid(
                    "TransformOutput.Accept",
                    "is \"\(accept)\"; DataProcessing.OutputFilter without JoinSource Input applies to the model's "
                        + "outputs, so Accept must be text/csv, application/json or application/jsonlines.")
            }
        }
    }

    private static func notColumns(_ filter: JSONPath) -> ServalError {
        .invalid(
            filter.field,
            "\"\(filter.expression)\" selects by name or nests, but CSV records are rows: select columns with one "
                + "bracket of indices and slices, such as \"$[1:]\" or \"$[0,-1]\".")
    }
}

/// What a media type says about how to read records and responses.
enum MediaKind: Equatable {
    /// `text/csv`: one row per line.
    case csv
    /// `application/json`: one JSON value.
    case json
    /// `application/jsonlines` and its aliases: one JSON value per line.
    case jsonLines
    /// `text/plain`: lines.
    case text
    /// No media type: decided from the bytes.
    case unspecified
    /// Anything else: opaque bytes.
    case other

    /// Classifies a `Content-Type` or `Accept` value, ignoring parameters (`; charset=utf-8`) and case.
    init(_ mediaType: String) {
        var essence = mediaType.lowercased()
        if let semicolon = essence.firstIndex(of: ";") { essence = String(essence[..<semicolon]) }
        essence = String(essence.filter { $0 != " " && $0 != "\t" })
        switch essence {
        case "": self = .unspecified
        case "text/csv", "application/csv": self = .csv
        case "application/json", "text/json": self = .json
        case "application/jsonlines", "application/jsonl", "application/x-jsonlines", "application/json-lines",
            "application/x-ndjson", "application/ndjson":
            self = .jsonLines
        case "text/plain": self = .text
        default: self = essence.hasSuffix("+json") ? .json : .other
        }
    }
}
