import Foundation
import ServalArtifacts
import ServalCore
import Testing

/// `SAGEMAKER_SUBMIT_DIRECTORY`'s archive added to a package's `code/`, and the two variables' parsing.
@Suite("PackageStore: submitted code (sourcedir.tar.gz)")
struct SubmittedCodeTests {
    @Test("the sourcedir's files replace model.tar.gz's code/ files of the same name, the others stay; its requirements and entry script are seen by inspection")
    func merge() throws {
        let sandbox = try Sandbox()
        var model = TarBuilder()
        model.file("model.joblib", "joblib")
        model.file("code/helpers.py", "MARK = 'model'\n")
        model.file("code/keep.py", "KEEP = 1\n")
        var source = TarBuilder()
        source.file("serve.py", "import helpers\n")
        source.file("helpers.py", "MARK = 'sourcedir'\n")
        source.file("lib/util.py", "U = 1\n")
        source.file("requirements.txt", requirementsText)
        let code = SubmittedCode(
            program: "serve.py", archivePath: try sandbox.write(try gzip(source.archive), name: "sourcedir.tar.gz"),
            uri: "s3://code/sourcedir.tar.gz")
        let stored = try sandbox.store.storeArchive(at: sandbox.write(model.archive), code: code, modelName: "m")
        let folder = sandbox.store.absolutePath(of: stored.relativePath) + "/code/"
        func read(_ name: String) -> String? { try? String(contentsOfFile: folder + name, encoding: .utf8) }
        #expect(read("helpers.py") == "MARK = 'sourcedir'\n")
        #expect(read("keep.py") == "KEEP = 1\n")
        #expect(read("serve.py") == "import helpers\n")
        #expect(read("lib/util.py") == "U = 1\n")
        #expect(stored.info.requirements == requirementsText)
        #expect(stored.info.hasInferenceCode)
        #expect(sandbox.tree().filter { $0.hasPrefix("data/staging/") }.isEmpty)
    }

    @Test("a hostile sourcedir is refused naming SAGEMAKER_SUBMIT_DIRECTORY, and nothing is stored")
    func hostile() throws {
        let sandbox = try Sandbox()
        var model = TarBuilder()
        model.file("model.joblib", "joblib")
        var source = TarBuilder()
        source.file("../escape.py", "x")
        let code = SubmittedCode(
            program: nil, archivePath: try sandbox.write(source.archive, name: "sourcedir.tar"), uri: "s3://code/bad.tar")
        #expect {
            try sandbox.store.storeArchive(at: sandbox.write(model.archive), code: code, modelName: "m")
        } throws: { error in
            guard case .invalid(let message) = error as? PackageError else { return false }
            return message.hasPrefix("SAGEMAKER_SUBMIT_DIRECTORY s3://code/bad.tar: ")
        }
        #expect(sandbox.tree().filter { $0.hasPrefix("data/models/") || $0.hasPrefix("data/staging/") }.isEmpty)
    }

    @Test("parse: s3 URIs, the package's own code folder, and refusals that say what Serval accepts")
    func parse() throws {
        let parsed = try SubmittedCode.parse(
            ["SAGEMAKER_PROGRAM": "app/serve.py", "SAGEMAKER_SUBMIT_DIRECTORY": "s3://bucket/p/sourcedir.tar.gz"], field: "env")
        #expect(parsed.program == "app/serve.py")
        #expect(parsed.archive?.uri == "s3://bucket/p/sourcedir.tar.gz")
        let own = try SubmittedCode.parse(["SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code/"], field: "env")
        #expect(own.program == nil && own.archive == nil)
        for (key, value, text) in [
            ("SAGEMAKER_SUBMIT_DIRECTORY", "/opt/ml/code", "use s3://BUCKET/KEY"),
            ("SAGEMAKER_SUBMIT_DIRECTORY", "https://example.com/x.tar.gz", "use s3://BUCKET/KEY"),
            ("SAGEMAKER_PROGRAM", "../serve.py", "inside the code folder"),
            ("SAGEMAKER_PROGRAM", "/serve.py", "inside the code folder"),
        ] {
            #expect {
                try SubmittedCode.parse([key: value], field: "env")
            } throws: { error in
                let message = (error as? ServalError)?.message ?? ""
                return message.contains("env.\(key)") && message.contains(text)
            }
        }
    }
}
