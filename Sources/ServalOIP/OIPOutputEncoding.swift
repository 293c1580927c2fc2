/// How the client wants each output encoded: as JSON in `data`, or as raw bytes after the JSON (Triton's binary
/// tensor extension).
///
/// The request-level parameter `binary_data_output` sets the default; a requested output's own `binary_data`
/// parameter overrides it for that output.
public struct OIPOutputEncoding: Sendable, Equatable {
    /// Whether outputs without a choice of their own are binary: the request's `binary_data_output`.
    public var binaryByDefault: Bool
    /// Each requested output's `binary_data` parameter, by output name, when it had one.
    public var binaryByOutput: [String: Bool]

    /// Creates an encoding; the default writes every output as JSON.
    public init(binaryByDefault: Bool = false, binaryByOutput: [String: Bool] = [:]) {
        self.binaryByDefault = binaryByDefault
        self.binaryByOutput = binaryByOutput
    }

    /// Every output as JSON.
    public static let json = OIPOutputEncoding()

    /// Whether the output named `output` goes in binary form.
    public func isBinary(_ output: String) -> Bool {
        binaryByOutput[output] ?? binaryByDefault
    }
}
