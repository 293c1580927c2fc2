import ArgumentParser
import Foundation
import NIOCore
import ServalAPI
import ServalClient
import ServalCore

/// `serval async ...`: asynchronous invocations.
struct AsyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "async", abstract: "Submit asynchronous invocations and collect their results.",
        subcommands: [Submit.self, Status.self, Wait.self, Result.self, List.self, Cancel.self])

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit an async invocation and print its id (JSON with the inference id and locations).")

        @Argument(help: "The endpoint.")
        var name: String

        @Option(help: "A local file: uploaded through the object API, then submitted by location (up to 1 GB).")
        var file: String?

        @Option(help: "An input already in the object store: s3://bucket/key.")
        var input: String?

        @Option(help: "An inline body (at most 128,000 bytes): text, or @FILE.")
        var body: String?

        @Option(help: "Where --file is uploaded: s3://bucket/prefix (default s3://serval-inputs/<endpoint>).")
        var uploadPrefix: String?

        @Option(help: "The input's content type.")
        var contentType = "application/json"

        @Option(help: "The content type to ask for.")
        var accept: String?

        @Option(help: "An id of your own; submitting it again is one invocation.")
        var inferenceId: String?

        @Option(help: "Seconds the request may wait in the queue (60-21600).")
        var ttl: Int?

        @Option(help: "Seconds the invocation may run (1-3600).")
        var timeout: Int?

        @Flag(help: "Wait until it ends and print its status.")
        var wait = false

        @OptionGroup var options: ServerOptions
        @OptionGroup var objectOptions: ObjectAPIOptions

        func validate() throws {
            guard [file, input, body].compactMap({ $0 }).count == 1 else {
                throw ValidationError("Give exactly one of --file, --input and --body.")
            }
        }

        func run() async throws {
            try await reportingErrors {
                let client = options.client
                var location = input
                var inline: ByteBuffer?
                if let file {
                    let prefix = uploadPrefix ?? "s3://serval-inputs/\(name)"
                    let key = "\(UUID().uuidString.lowercased())-\(URL(fileURLWithPath: file).lastPathComponent)"
                    let uri = (prefix.hasSuffix("/") ? prefix : prefix + "/") + key
                    let destination = try ObjectLocation(uri: uri, field: "--upload-prefix")
                    _ = try await objectOptions.client(apiKey: options.key.resolved).put(file: file, to: destination, contentType: contentType)
                    location = destination.uri
                } else if let body {
                    inline = ByteBuffer(bytes: try readBody(body))
                }
                let submitted = try await client.submitAsync(
                    name, inputLocation: location, body: inline, contentType: contentType, accept: accept,
                    inferenceId: inferenceId, requestTTLSeconds: ttl, invocationTimeoutSeconds: timeout)
                if wait {
                    try printJSON(try await client.waitForAsyncInvocation(name, id: submitted.inferenceId))
                } else {
                    try printJSON([
                        "InferenceId": submitted.inferenceId, "OutputLocation": submitted.outputLocation,
                        "FailureLocation": submitted.failureLocation, "InputLocation": location ?? "(inline)",
                    ])
                }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print an invocation's status as JSON.")

        @Argument(help: "The endpoint.") var name: String
        @Argument(help: "The inference id.") var id: String
        @OptionGroup var options: ServerOptions

        func run() async throws {
            try await reportingErrors { try printJSON(try await options.client.asyncInvocation(name, id: id)) }
        }
    }

    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait until an invocation ends; print its status, and exit 1 unless it Completed.")

        @Argument(help: "The endpoint.") var name: String
        @Argument(help: "The inference id.") var id: String
        @Option(help: "The longest wait, in seconds.") var timeout = 3600
        @OptionGroup var options: ServerOptions

        func run() async throws {
            try await reportingErrors {
                let invocation = try await options.client.waitForAsyncInvocation(name, id: id, timeout: .seconds(timeout))
                try printJSON(invocation)
                if invocation.status != "Completed" { throw ExitCode.failure }
            }
        }
    }

    struct Result: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a completed invocation's output to a file or stdout.")

        @Argument(help: "The endpoint.") var name: String
        @Argument(help: "The inference id.") var id: String
        @Option(name: .shortAndLong, help: "The file to write (default standard output).") var output = "-"
        @OptionGroup var options: ServerOptions

        func run() async throws {
            try await reportingErrors {
                let size = try await options.client.downloadAsyncResult(name, id: id, to: output)
                if output != "-" { print("Wrote \(size) bytes to \(output).") }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an endpoint's invocations, newest first.")

        @Argument(help: "The endpoint.") var name: String
        @Option(help: "Only this status: Queued, InProgress, Completed, Failed or Expired.") var status: String?
        @Option(help: "At most this many (1-1000).") var limit = 100
        @Option(help: "The nextToken of the previous page.") var nextToken: String?
        @OptionGroup var options: ServerOptions

        func run() async throws {
            try await reportingErrors {
                try printJSON(try await options.client.asyncInvocations(name, status: status, limit: limit, nextToken: nextToken))
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a queued invocation.")

        @Argument(help: "The endpoint.") var name: String
        @Argument(help: "The inference id.") var id: String
        @OptionGroup var options: ServerOptions

        func run() async throws {
            try await reportingErrors { try printJSON(try await options.client.cancelAsync(name, id: id)) }
        }
    }
}
