public import ServalCore

/// A model's serving code as the SageMaker Python SDK names it in the container's environment: the entry script
/// (`SAGEMAKER_PROGRAM`) and the folder that holds it (`SAGEMAKER_SUBMIT_DIRECTORY`), either a `sourcedir.tar.gz`
/// the SDK uploaded or the package's own `code/` folder.
public struct SubmittedCode: Sendable, Equatable {
    /// The variable naming the entry script, a path relative to `code/` (e.g. `serve.py`).
    public static let programVariable = "SAGEMAKER_PROGRAM"
    /// The variable naming where the code is: `s3://bucket/key` of a tar.gz, or the package's own `code/` folder.
    public static let directoryVariable = "SAGEMAKER_SUBMIT_DIRECTORY"
    /// The package's own `code/` folder, as SageMaker's containers see it.
    public static let packageCodeFolder = "/opt/ml/model/code"

    /// The entry script in `code/`; nil means `inference.py`.
    public var program: String?
    /// The server path of the code archive to add to `code/`; nil when the code is the package's own.
    public var archivePath: String?
    /// Where the code archive came from (`s3://…`), for messages.
    public var uri: String

    /// Creates the description of a model's code.
    public init(program: String?, archivePath: String?, uri: String) {
        self.program = program
        self.archivePath = archivePath
        self.uri = uri
    }

    /// Reads the two variables from a model's environment: returns the entry script and, when the code is an
    /// archive in the object store, its location.
    ///
    /// - Parameter field: the request field holding the environment (`environment`, `PrimaryContainer.Environment`).
    /// - Throws: `ServalError` (validation) for a program that is not a relative path inside `code/`, or a submit
    ///   directory that is neither `s3://bucket/key` nor the package's `code/` folder.
    public static func parse(
        _ environment: [String: String], field: String
    ) throws(ServalError) -> (program: String?, archive: ObjectLocation?) {
        var program: String?
        if let value = environment[programVariable], !value.isEmpty {
            let parts = value.split(separator: "/", omittingEmptySubsequences: false)
            guard !value.hasPrefix("/"), !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
                throw .invalid(
                    "\(field).\(programVariable)",
                    "\"\(value)\" must be the entry script's path inside the code folder, such as serve.py or app/serve.py.")
            }
            program = value
        }
        guard var directory = environment[directoryVariable], !directory.isEmpty else { return (program, nil) }
        let name = "\(field).\(directoryVariable)"
        if directory.hasPrefix("s3://") {
            return (program, try ObjectLocation(uri: directory, field: name))
        }
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        if directory.hasPrefix("file://") { directory.removeFirst("file://".count) }
        guard directory == packageCodeFolder else {
            throw .invalid(
                name,
                "\"\(environment[directoryVariable] ?? "")\" is not a place Serval reads code from: use s3://BUCKET/KEY of a sourcedir.tar.gz in Serval's object store, or \(packageCodeFolder) for the code/ folder inside the model package.")
        }
        return (program, nil)
    }
}
