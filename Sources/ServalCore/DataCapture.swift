/// Data capture, as SageMaker's `DataCaptureConfig`: a sampled share of an endpoint's requests and responses is
/// written as JSON Lines to the object store.
public struct DataCaptureConfig: Codable, Sendable, Equatable {
    /// Whether capture is on (`EnableCapture`).
    public var enabled: Bool
    /// The share of invocations captured, 0 to 100 (`InitialSamplingPercentage`).
    public var samplingPercentage: Int
    /// `s3://bucket/prefix` in Serval's store; files go under `<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/`.
    public var destination: String
    /// Whether requests are captured (`CaptureMode` `Input`).
    public var captureInput: Bool
    /// Whether responses are captured (`CaptureMode` `Output`).
    public var captureOutput: Bool
    /// Content types whose bodies are written as text with encoding `CSV` (`CsvContentTypes`).
    public var csvContentTypes: [String]
    /// Content types whose bodies are written as text with encoding `JSON` (`JsonContentTypes`); any other body is
    /// written `BASE64`.
    public var jsonContentTypes: [String]
    /// `KmsKeyId`, kept and reported; Serval's store does not encrypt with it.
    public var kmsKeyID: String?

    /// SageMaker's defaults for the content types written as text.
    public static let defaultCSVContentTypes = ["text/csv"]
    public static let defaultJSONContentTypes = ["application/json"]

    /// Creates a config.
    public init(
        enabled: Bool = true, samplingPercentage: Int, destination: String, captureInput: Bool = true,
        captureOutput: Bool = true, csvContentTypes: [String] = Self.defaultCSVContentTypes,
        jsonContentTypes: [String] = Self.defaultJSONContentTypes, kmsKeyID: String? = nil
    ) {
        self.enabled = enabled
        self.samplingPercentage = samplingPercentage
        self.destination = destination
        self.captureInput = captureInput
        self.captureOutput = captureOutput
        self.csvContentTypes = csvContentTypes
        self.jsonContentTypes = jsonContentTypes
        self.kmsKeyID = kmsKeyID
    }

    /// Whether invocations are captured at all.
    public var isActive: Bool { enabled && samplingPercentage > 0 }

    /// The names an API gives the settings, for error messages.
    public struct FieldNames: Sendable {
        /// The sampling percentage's name.
        public var samplingPercentage: String
        /// The destination's name.
        public var destination: String
        /// The capture modes' name.
        public var captureModes: String
        /// The text content types' name, completed with `CsvContentTypes` / `JsonContentTypes`.
        public var contentTypes: String

        /// SageMaker's names, under `prefix` (`DataCaptureConfig`).
        public static func sageMaker(_ prefix: String) -> Self {
            Self(
                samplingPercentage: "\(prefix).InitialSamplingPercentage", destination: "\(prefix).DestinationS3Uri",
                captureModes: "\(prefix).CaptureOptions", contentTypes: "\(prefix).CaptureContentTypeHeader")
        }

        /// Serval's REST names, under `prefix` (`dataCapture`).
        public static func rest(_ prefix: String) -> Self {
            Self(
                samplingPercentage: "\(prefix).samplingPercentage", destination: "\(prefix).destination",
                captureModes: "\(prefix).captureModes", contentTypes: "\(prefix).contentTypes")
        }
    }

    /// Checks the percentage, the destination (an `s3://bucket/prefix` of Serval's object store) and the modes;
    /// errors name the field as `fields` call it.
    public func validate(fields: FieldNames) throws(ServalError) {
        guard (0...100).contains(samplingPercentage) else {
            throw .invalid(fields.samplingPercentage, "must be from 0 to 100; it is \(samplingPercentage).")
        }
        guard destination.hasPrefix("s3://") else {
            throw .invalid(
                fields.destination,
                "\"\(destination)\" is not a location in Serval's object store; write s3://bucket/prefix (the bucket is created when missing).")
        }
        try ObjectLocation.validate(prefixURI: destination, field: fields.destination)
        guard captureInput || captureOutput else {
            throw .invalid(fields.captureModes, "must name Input, Output or both.")
        }
        for (name, types) in [("CsvContentTypes", csvContentTypes), ("JsonContentTypes", jsonContentTypes)] {
            guard (1...10).contains(types.count), types.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 256 }) else {
                throw .invalid(
                    "\(fields.contentTypes).\(name)", "must list 1 to 10 content types of at most 256 characters.")
            }
        }
    }

    /// The `encoding` of a captured body of `contentType`: `CSV` and `JSON` bodies are written as text. Parameters
    /// (`; charset=utf-8`) and case are ignored.
    public func encoding(of contentType: String) -> CaptureEncoding {
        if csvContentTypes.contains(where: { Self.sameMediaType($0, contentType) }) { return .csv }
        if jsonContentTypes.contains(where: { Self.sameMediaType($0, contentType) }) { return .json }
        return .base64
    }

    /// Whether `listed` names the media type of `contentType`, case-insensitively and without its parameters.
    static func sameMediaType(_ listed: String, _ contentType: String) -> Bool {
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }
        func lowered(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }
        var type = contentType.utf8[...]
        if let semicolon = type.firstIndex(of: UInt8(ascii: ";")) { type = type[..<semicolon] }
        while let first = type.first, isSpace(first) { type = type.dropFirst() }
        while let last = type.last, isSpace(last) { type = type.dropLast() }
        return listed.utf8.count == type.count && zip(listed.utf8, type).allSatisfy { lowered($0) == lowered($1) }
    }
}

/// How a captured body is written in its record's `data`.
public enum CaptureEncoding: String, Sendable, Codable {
    case csv = "CSV"
    case json = "JSON"
    case base64 = "BASE64"
}
