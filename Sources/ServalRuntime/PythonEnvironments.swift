import Crypto
import Foundation
import Logging
import NIOPosix
public import ServalCore

#if canImport(Glibc)
import Glibc
#endif

/// Where the Python side of Serval lives and how to prepare environments for it.
public struct PythonSettings: Sendable {
    /// The interpreter for the base runtime: a name on `PATH` or a path. Default `python3`.
    public var executable: String
    /// The folder holding the Python worker package (`serval_worker`).
    public var workerPath: String
    /// Where environments are kept: the base runtime venv and one venv per distinct set of requirements.
    public var cacheDirectory: String
    /// The packages of the base runtime, as pip requirement lines.
    public var basePackages: [String]
    /// Who every Python process runs as: interpreter probes, `venv` and `pip` (whose build steps run packages'
    /// code) and the model workers.
    public var runAs: ChildIdentity

    /// Creates settings.
    public init(
        executable: String, workerPath: String, cacheDirectory: String, basePackages: [String],
        runAs: ChildIdentity = .server
    ) {
        self.executable = executable
        self.workerPath = workerPath
        self.cacheDirectory = cacheDirectory
        self.basePackages = basePackages
        self.runAs = runAs
    }

    /// The interpreter's own path, as Python reports it (`sys.executable`), for `executable`. Python processes run
    /// with a scrubbed environment, in which a launcher such as a pyenv shim (which needs `PYENV_ROOT` and its
    /// user's home) would not find the interpreter. A venv's interpreter stays the venv's. When the probe fails,
    /// `name` is kept and the first deploy says why.
    public static func interpreterPath(_ name: String) async -> String {
        let probe = ChildLaunch(
            arguments: [name, "-c", "import sys; print(sys.executable)"], environment: ProcessInfo.processInfo.environment)
        guard let result = try? await runToCompletion(probe), result.status == .exited(0) else { return name }
        let path = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
        return path.hasPrefix("/") && !path.contains("\n") ? path : name
    }

    /// The base runtime Serval installs when the interpreter lacks it.
    public static let defaultBasePackages = ["numpy", "scikit-learn", "joblib"]
}

/// A prepared Python environment in which a model's workers run.
public struct PythonEnvironment: Sendable, Equatable {
    /// The interpreter to start workers with.
    public var python: String
}

/// Prepares and caches Python environments.
///
/// The *base* runtime is the configured interpreter when it already imports the base packages, or else a venv
/// under the cache folder with them installed. A model whose default handler needs a framework (XGBoost, ONNX
/// Runtime, PyTorch) or whose package has `code/requirements.txt` gets a venv layered on the base (a `.pth`
/// file puts the base's site-packages on its path), keyed by the hash of what it installs, so that endpoints
/// and restarts share it. Venvs are built in a temporary folder and renamed into place when complete, so an
/// interrupted build is never used. A failing pip makes a ``ServalError`` with the tail of pip's output.
public actor PythonEnvironments {
    private let settings: PythonSettings
    private let logger: Logger
    private var base: Task<BaseRuntime, any Error>?
    private var builds: [String: Task<PythonEnvironment, any Error>] = [:]

    private struct BaseRuntime: Sendable {
        var python: String
        var sitePackages: [String]
    }

    /// Creates the manager.
    public init(settings: PythonSettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// The environment for a model package, built on first use.
    public func environment(for package: ModelPackageInfo) async throws(ServalError) -> PythonEnvironment {
        let base = try await baseRuntime()
        let extras = package.artifact.frameworkRequirements
        let requirements = package.requirements?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if extras.isEmpty && requirements.isEmpty {
            return PythonEnvironment(python: base.python)
        }
        let key = Self.digest(["layered-v1", base.python, extras.joined(separator: "\n"), requirements])
        if let build = builds[key] {
            return try await Self.value(of: build)
        }
        let build = Task { [settings, logger] in
            try await Self.buildLayered(
                key: key, base: base, extras: extras, requirements: requirements, settings: settings, logger: logger)
        }
        builds[key] = build
        do {
            return try await Self.value(of: build)
        } catch {
            builds[key] = nil  // A failed build may succeed later (a network blip); do not cache the failure.
            throw error
        }
    }

    /// The `PYTHONPATH` entry that makes the worker package importable.
    public nonisolated var workerPath: String { settings.workerPath }

    /// Who the workers run as.
    public nonisolated var runAs: ChildIdentity { settings.runAs }

    // MARK: Base runtime

    private func baseRuntime() async throws(ServalError) -> BaseRuntime {
        if let base {
            do { return try await base.value } catch { self.base = nil }
        }
        let task = Task { [settings, logger] in try await Self.prepareBase(settings: settings, logger: logger) }
        base = task
        do {
            return try await task.value
        } catch {
            base = nil
            throw error as? ServalError ?? ServalError(.internalFailure, "\(error)")
        }
    }

    private static func prepareBase(settings: PythonSettings, logger: Logger) async throws(ServalError) -> BaseRuntime {
        let probe = "import sys, site; import " + importNames(settings.basePackages).joined(separator: ", ")
            + "; print('\\n'.join(site.getsitepackages()))"
        let configured = try await run(
            [settings.executable, "-c", probe], what: "checking \(settings.executable)", as: settings.runAs, allowFailure: true)
        if case .exited(0) = configured.status {
            return BaseRuntime(python: settings.executable, sitePackages: lines(configured.output))
        }
        let key = digest(["base-v1", settings.executable, settings.basePackages.joined(separator: "\n")])
        let folder = settings.cacheDirectory + "/base-" + key.prefix(16)
        if !FileManager.default.fileExists(atPath: folder + "/bin/python") {
            logger.info("Preparing the base Python runtime", metadata: ["packages": "\(settings.basePackages)"])
            try await buildVenv(at: folder, python: settings.executable, pth: [], install: settings.basePackages, requirementsFile: nil, settings: settings)
        }
        let sites = try await run([folder + "/bin/python", "-c", probe], what: "checking the base runtime", as: settings.runAs)
        return BaseRuntime(python: folder + "/bin/python", sitePackages: lines(sites.output))
    }

    // MARK: Layered environments

    private static func buildLayered(
        key: String, base: BaseRuntime, extras: [String], requirements: String, settings: PythonSettings,
        logger: Logger
    ) async throws(ServalError) -> PythonEnvironment {
        let folder = settings.cacheDirectory + "/envs/" + key.prefix(24)
        if FileManager.default.fileExists(atPath: folder + "/bin/python") {
            return PythonEnvironment(python: folder + "/bin/python")
        }
        logger.info("Preparing a Python environment", metadata: ["extras": "\(extras)", "env": "\(key.prefix(24))"])
        var requirementsFile: String?
        if !requirements.isEmpty {
            requirementsFile = settings.cacheDirectory + "/envs/.requirements-\(UUID().uuidString).txt"
            try? FileManager.default.createDirectory(atPath: settings.cacheDirectory + "/envs", withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: requirementsFile!, contents: Data(requirements.utf8))
        }
        defer { if let requirementsFile { try? FileManager.default.removeItem(atPath: requirementsFile) } }
        try await buildVenv(
            at: folder, python: base.python, pth: base.sitePackages, install: extras, requirementsFile: requirementsFile,
            settings: settings)
        return PythonEnvironment(python: folder + "/bin/python")
    }

    /// Builds a venv in a temporary folder, installs into it, and renames it to `folder`.
    private static func buildVenv(
        at folder: String, python: String, pth: [String], install: [String], requirementsFile: String?,
        settings: PythonSettings
    ) async throws(ServalError) {
        let parent = (folder as NSString).deletingLastPathComponent
        let temporary = parent + "/.building-\(UUID().uuidString.lowercased())"
        do {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        } catch {
            throw ServalError(.internalFailure, "Cannot create \(parent): \(error.localizedDescription).")
        }
        // venv and pip run as the workers' user, which must be able to create the venv here.
        if let user = settings.runAs.user { _ = lchown(parent, user.uid, user.gid) }
        do {
            try await populateVenv(
                at: temporary, python: python, pth: pth, install: install, requirementsFile: requirementsFile,
                identity: settings.runAs)
        } catch {
            // A half-built venv can be hundreds of megabytes: remove it off the event loops.
            try? await NIOThreadPool.singleton.runIfActive { try? FileManager.default.removeItem(atPath: temporary) }
            throw error
        }
        if rename(temporary, folder) != 0 && !FileManager.default.fileExists(atPath: folder + "/bin/python") {
            throw ServalError(.internalFailure, "Cannot move the Python environment into \(folder): \(String(cString: strerror(errno))).")
        }
    }

    /// Creates a venv at `temporary` and installs into it.
    private static func populateVenv(
        at temporary: String, python: String, pth: [String], install: [String], requirementsFile: String?,
        identity: ChildIdentity
    ) async throws(ServalError) {
        _ = try await run([python, "-m", "venv", temporary], what: "creating a Python venv", as: identity)
        let venvPython = temporary + "/bin/python"
        if !pth.isEmpty {
            let sites = try await run(
                [venvPython, "-c", "import site; print(site.getsitepackages()[0])"], what: "inspecting the venv", as: identity)
            let sitePackages = lines(sites.output).first ?? ""
            _ = FileManager.default.createFile(
                atPath: sitePackages + "/_serval_base.pth", contents: Data((pth.joined(separator: "\n") + "\n").utf8))
        }
        var arguments = [venvPython, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q"]
        arguments += install
        if let requirementsFile { arguments += ["-r", requirementsFile] }
        if !install.isEmpty || requirementsFile != nil {
            _ = try await run(
                arguments, what: "pip install \((install + (requirementsFile == nil ? [] : ["-r code/requirements.txt"])).joined(separator: " "))",
                as: identity)
        }
    }

    // MARK: Helpers

    @discardableResult
    private static func run(
        _ arguments: [String], what: String, as identity: ChildIdentity, allowFailure: Bool = false
    ) async throws(ServalError) -> (status: ExitStatus, output: String) {
        var environment = identity.environment(.packageInstalls)
        environment["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        guard ChildProcess.executablePath(arguments[0], searchPath: environment["PATH"]) != nil else {
            throw ServalError(
                .validationError,
                "\(arguments[0]) was not found: install Python 3.9 or later, or start Serval with --python pointing at an interpreter.")
        }
        let result = try await runToCompletion(ChildLaunch(arguments: arguments, environment: environment, user: identity.user))
        if !allowFailure, result.status != .exited(0) {
            throw ServalError(
                .validationError,
                "\(what) failed (\(result.status)):\n\(tail(result.output, lines: 15))")
        }
        return result
    }

    private static func value(of task: Task<PythonEnvironment, any Error>) async throws(ServalError) -> PythonEnvironment {
        do {
            return try await task.value
        } catch {
            throw error as? ServalError ?? ServalError(.internalFailure, "\(error)")
        }
    }

    private static func importNames(_ packages: [String]) -> [String] {
        let known = ["scikit-learn": "sklearn", "onnxruntime": "onnxruntime", "pyyaml": "yaml"]
        return packages.map { requirement in
            let name = String(requirement.prefix { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }).lowercased()
            return known[name] ?? name.replacingOccurrences(of: "-", with: "_")
        }
    }

    private static func lines(_ text: String) -> [String] {
        text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    private static func digest(_ parts: [String]) -> String {
        SHA256.hash(data: Data(parts.joined(separator: "\u{0}").utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
