import ArgumentParser
import Foundation
import Logging
import ServalAPI
import ServalAuth
import ServalClient
import ServalCore
import ServalHTTP
import ServalServices
import ServalStore

/// `serval keys ...`: access keys, through the API (admin only when authentication is on) or, with `--data-dir`,
/// directly on a data folder, to create the first admin key before a server runs with `--auth`.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Create, list and delete access keys.",
        subcommands: [Create.self, List.self, Delete.self])

    /// Where the keys are managed: a server, or a data folder.
    struct KeyTarget: ParsableArguments {
        @Option(help: "Work on this data folder directly instead of through a server (e.g. to create the first admin key).")
        var dataDir: String?

        @OptionGroup var server: ServerOptions

        /// The key service on the data folder, or `nil` to go through the server.
        func localService() throws -> AccessKeyService? {
            guard let dataDir else { return nil }
            let folder = URL(fileURLWithPath: dataDir).standardizedFileURL.path
            let logger = Logger(label: "serval", factory: { _ in SwiftLogNoOpLogHandler() })
            try DataFolder.secure(folder, logger: logger)
            let store = try SQLiteMetadataStore(path: folder + "/serval.sqlite")
            return AccessKeyService(
                store: store, masterKeyPath: AccessKeyService.masterKeyPath(dataDirectory: folder), clock: SystemClock(),
                logger: logger)
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an access key and print it as JSON (AccessKeyId, SecretAccessKey, Role); the secret is shown only now.")

        @Option(help: "admin (everything), deployer (models, configs, endpoints, jobs, objects, invoking) or invoker (invoking only).")
        var role: String

        @Option(help: "What the key is for (at most 256 characters).")
        var description: String?

        @OptionGroup var target: KeyTarget

        func run() async throws {
            try await reportingErrors {
                if let service = try target.localService() {
                    let new = try await service.create(role: try AccessKeyRole(parsing: role), description: description)
                    try printJSON(AccessKeyDescription(new.key, description: description, secret: new.secret))
                } else {
                    try printJSON(try await target.server.client.createAccessKey(role: role, description: description))
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List access keys (without secrets) as JSON.")
        @OptionGroup var target: KeyTarget

        func run() async throws {
            try await reportingErrors {
                if let service = try target.localService() {
                    let keys = try await service.list()
                    try printJSON(
                        AccessKeyList(accessKeys: keys.map { AccessKeyDescription($0.key, description: $0.description, secret: nil) }))
                } else {
                    try printJSON(AccessKeyList(accessKeys: try await target.server.client.accessKeys()))
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete an access key; requests made with it are refused from then on.")
        @Argument(help: "The access key id.") var id: String
        @OptionGroup var target: KeyTarget

        func run() async throws {
            try await reportingErrors {
                if let service = try target.localService() {
                    try await service.delete(id: id)
                } else {
                    try await target.server.client.deleteAccessKey(id)
                }
                print("Deleted access key \(id).")
            }
        }
    }
}
