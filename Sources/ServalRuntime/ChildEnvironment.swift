import Foundation

/// Which of Serval's environment variables a child process gets. Nothing else of Serval's environment reaches
/// model code: not its access keys, not `SERVAL_*`, not cloud credentials.
struct ChildEnvironment: Sendable {
    /// Variables passed on by exact name.
    let names: Set<String>
    /// Variables passed on by prefix.
    let prefixes: [String]

    /// What every child gets: where programs are, the user's language and time zone, the temporary folder and
    /// the thread settings of the math libraries (some processors need OpenBLAS's core type set to compute right).
    static let basics = ChildEnvironment(
        names: ["PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "OMP_NUM_THREADS", "MKL_NUM_THREADS"],
        prefixes: ["LC_", "OPENBLAS_"])

    /// What `venv` and `pip` also get: pip's settings, and the certificates and proxies that reach the registry.
    static let packageInstalls = ChildEnvironment(
        names: basics.names.union([
            "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY",
            "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
        ]),
        prefixes: basics.prefixes + ["PIP_"])

    /// The variables of `environment` that pass.
    func pick(from environment: [String: String]) -> [String: String] {
        environment.filter { key, _ in names.contains(key) || prefixes.contains { key.hasPrefix($0) } }
    }
}

/// Who Serval's child processes (Python probes, `pip`, model workers) run as, and the home they get.
public struct ChildIdentity: Sendable, Equatable {
    /// The unprivileged user children run as; `nil` runs them as Serval's own user.
    public var user: ProcessUser?
    /// `HOME` for the children: a folder `user` owns. `nil` passes on Serval's own `HOME`.
    public var home: String?
    /// Where the files of file invocations are handed to workers running as `user` (see ``FileExchange``); `nil`
    /// when workers run as Serval's own user and read Serval's paths.
    public var exchangeDirectory: String?

    /// Creates an identity.
    public init(user: ProcessUser?, home: String?, exchangeDirectory: String? = nil) {
        self.user = user
        self.home = home
        self.exchangeDirectory = exchangeDirectory
    }

    /// Children run as Serval's own user, with its `HOME`.
    public static let server = ChildIdentity(user: nil, home: nil)

    /// How file invocations reach workers of this identity; `nil` when they read Serval's paths directly.
    var fileExchange: FileExchange? {
        guard let user, let exchangeDirectory else { return nil }
        return FileExchange(directory: exchangeDirectory, user: user)
    }

    /// A child's environment: the variables of Serval's environment that `allowed` passes, and `HOME`.
    func environment(
        _ allowed: ChildEnvironment, from server: [String: String] = ProcessInfo.processInfo.environment
    ) -> [String: String] {
        var environment = allowed.pick(from: server)
        if let home = home ?? server["HOME"] { environment["HOME"] = home }
        return environment
    }
}
