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

    /// Checks the percentage, the destination and the modes; `field` prefixes the names in messages.
    public func validate(field: String) throws(ServalError) {
        guard (0...100).contains(samplingPercentage) else {
            throw .invalid("\(field).InitialSamplingPercentage", "must be from 0 to 100; it is \(samplingPercentage).")
        }
        try ObjectLocation.validate(prefixURI: destination, field: "\(field).DestinationS3Uri")
        guard captureInput || captureOutput else {
            throw .invalid("\(field).CaptureOptions", "must name Input, Output or both.")
        }
        for (name, types) in [("CsvContentTypes", csvContentTypes), ("JsonContentTypes", jsonContentTypes)] {
            guard (1...10).contains(types.count), types.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 256 }) else {
                throw .invalid(
                    "\(field).CaptureContentTypeHeader.\(name)", "must list 1 to 10 content types of at most 256 characters.")
            }
        }
    }

    /// The `encoding` of a captured body of `contentType`: `CSV` and `JSON` bodies are written as text.
    public func encoding(of contentType: String) -> CaptureEncoding {
        let type = contentType.prefix { $0 != ";" }
        let bare = type.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed().map(String.init).joined().lowercased()
        if csvContentTypes.contains(where: { $0.lowercased() == bare }) { return .csv }
        if jsonContentTypes.contains(where: { $0.lowercased() == bare }) { return .json }
        return .base64
    }
}

/// How a captured body is written in its record's `data`.
public enum CaptureEncoding: String, Sendable, Codable {
    case csv = "CSV"
    case json = "JSON"
    case base64 = "BASE64"
}
