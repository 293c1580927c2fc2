import ArgumentParser
import ServalCore

/// The `serval` command: the server and its command-line client.
struct Serval: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serval",
        abstract: "Serve trained machine-learning models over HTTP and gRPC.",
        version: servalVersion,
        subcommands: [
            Serve.self, Deploy.self, Invoke.self, ModelsCommand.self, EndpointsCommand.self, AsyncCommand.self,
            ObjectsCommand.self, TransformCommand.self, KeysCommand.self, LogsCommand.self,
        ])
}
