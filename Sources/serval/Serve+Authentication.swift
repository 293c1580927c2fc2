import ArgumentParser
import Foundation
import Logging
import ServalAuth
import ServalCore
import ServalHTTP
import ServalServices
import ServalStore

/// `serve`'s access control: whether authentication is on, the rule that keeps an open server on loopback, and the
/// key service and authenticator every frontend shares.
extension Serve {
    /// Whether authentication is on: `--auth`, or `SERVAL_AUTH` set to `1`, `true` or `yes`.
    func authenticationEnabled(environment: [String: String]) -> Bool {
        auth || ["1", "true", "yes", "on"].contains(environment["SERVAL_AUTH"]?.lowercased() ?? "")
    }

    /// Whether `host` only accepts connections from this machine.
    static func isLoopback(_ host: String) -> Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return bare == "localhost" || bare == "::1" || bare.hasPrefix("127.")
    }

    /// Refuses to serve without authentication on an address other machines can reach, unless told to.
    func checkAuthenticationPolicy(enabled: Bool) throws {
        guard !enabled, !Self.isLoopback(host), !allowUnauthenticated else { return }
        throw ValidationError(
            """
            Refusing to listen on \(host) without authentication: anyone who can reach it could deploy code. \
            Turn authentication on with --auth (or SERVAL_AUTH=1) after creating an admin key with \
            `serval keys create --role admin --data-dir \(dataDir)`, or pass --allow-unauthenticated to serve \
            openly anyway.
            """)
    }

    /// The access key service on the data folder and, when authentication is on, the authenticator (the master
    /// key is loaded now, so that a bad key file stops the server at startup).
    func makeAccessControl(
        store: any AccessKeyStore, dataDirectory: String, clock: any WallClock, enabled: Bool, logger: Logger
    ) async throws -> (http: HTTPAccessControl, authenticator: RequestAuthenticator?) {
        let keys = AccessKeyService(
            store: store, masterKeyPath: AccessKeyService.masterKeyPath(dataDirectory: dataDirectory), clock: clock,
            logger: logger)
        guard enabled else {
            logger.notice("Authentication is off: every request is served without credentials (loopback only unless --allow-unauthenticated).")
            return (HTTPAccessControl(keys: keys, authenticator: nil), nil)
        }
        try keys.prepare()
        let count = try await keys.list().count
        if count == 0 {
            logger.warning(
                "Authentication is on and there are no access keys yet: create one with `serval keys create --role admin --data-dir \(dataDirectory)`.")
        } else {
            logger.notice("Authentication is on", metadata: ["access_keys": "\(count)"])
        }
        let authenticator = RequestAuthenticator(directory: keys, clock: clock)
        return (HTTPAccessControl(keys: keys, authenticator: authenticator), authenticator)
    }
}
