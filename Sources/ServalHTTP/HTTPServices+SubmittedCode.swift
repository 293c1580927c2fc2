import ServalArtifacts
import ServalCore
import ServalObjects

extension HTTPServices {
    /// The serving code a model's environment names (`SAGEMAKER_PROGRAM`, `SAGEMAKER_SUBMIT_DIRECTORY`), with a
    /// code archive found in Serval's object store; nil when the environment names neither.
    ///
    /// - Parameter field: the request field holding the environment, used in error messages.
    /// - Throws: `ServalError` (validation) naming the variable when its value is refused or its object is missing.
    func submittedCode(_ environment: [String: String], field: String) async throws -> SubmittedCode? {
        let (program, archive) = try SubmittedCode.parse(environment, field: field)
        guard let archive else {
            return program.map { SubmittedCode(program: $0, archivePath: nil, uri: SubmittedCode.packageCodeFolder) }
        }
        guard let objects = sageMaker.objects, let path = try await objects.localPath(of: archive) else {
            throw ServalError.invalid(
                "\(field).\(SubmittedCode.directoryVariable)",
                "\(archive.uri) does not exist in Serval's object store; upload the code (sourcedir.tar.gz) there first, or leave the variable out to use the package's own code/ folder.")
        }
        return SubmittedCode(program: program, archivePath: path, uri: archive.uri)
    }
}
