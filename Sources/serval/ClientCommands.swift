import ArgumentParser
import Foundation
import NIOCore
import ServalAPI
import ServalClient
import ServalCore

/// Options every client command shares.
struct ServerOptions: ParsableArguments {
    @Option(help: "Serval's URL (or SERVAL_URL).")
    var server: String?

    @OptionGroup var key: APIKeyOptions

    var client: ServalClient {
        ServalClient(
            baseURL: server ?? ProcessInfo.processInfo.environment["SERVAL_URL"] ?? "http://127.0.0.1:8080",
            apiKey: key.resolved)
    }
}

/// The access key a client command authenticates with, when the server has authentication on.
struct APIKeyOptions: ParsableArguments {
    @Option(
        name: .customLong("api-key"),
        help: "An access key, ACCESS_KEY_ID:SECRET (or SERVAL_API_KEY): sent as a bearer token to the REST API, used to sign requests to the object API.")
    var apiKey: String?

    /// The key from the option, else from `SERVAL_API_KEY`.
    var resolved: String? {
        if let apiKey { return apiKey }
        let environment = ProcessInfo.processInfo.environment["SERVAL_API_KEY"]
        return environment?.isEmpty == false ? environment : nil
    }

    func validate() throws {
        guard let key = resolved else { return }
        let parts = key.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw ValidationError("The API key must be ACCESS_KEY_ID:SECRET, as `serval keys create` prints them.")
        }
    }
}

/// Prints a value as indented JSON.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Runs a client action, turning Serval's errors into a message and exit status 1.
func reportingErrors(_ action: () async throws -> Void) async throws {
    do {
        try await action()
    } catch let error as ServalError {
        FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
        throw ExitCode.failure
    }
}

/// A request body from the command line: text, `@FILE` to read a file, or `-` to read standard input.
func readBody(_ argument: String) throws -> Data {
    if argument == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
    guard argument.hasPrefix("@") else { return Data(argument.utf8) }
    guard let data = FileManager.default.contents(atPath: String(argument.dropFirst())) else {
        throw ServalError(.validationError, "Cannot read \(argument.dropFirst()).")
    }
    return data
}

/// `serval deploy`: model, endpoint config and endpoint in one step, waiting until it serves.
struct Deploy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Deploy a model package (folder, .tar or .tar.gz) as an endpoint and wait until it is InService.")

    @Argument(help: "The model package.")
    var path: String

    @Option(help: "The name of the model, endpoint config and endpoint.")
    var name: String

    @Option(help: "Worker instances.")
    var instances = 1

    @Option(help: "The most requests per batch (1 = batching off).")
    var maxBatchSize = 1

    @Option(help: "How long a request may wait for a fuller batch, in milliseconds.")
    var maxDelayMs = 0.0

    @Option(help: "Take asynchronous invocations, writing results under this s3://bucket/prefix.")
    var asyncOutput: String?

    @Option(help: "Where failure objects of async invocations go (s3://bucket/prefix; default the output prefix).")
    var asyncFailure: String?

    @Option(help: "Async invocations each instance runs at once (1-1000; default 4).")
    var asyncMaxConcurrency: Int?

    @Option(help: "A URL notified (POST, JSON) when an async invocation completes.")
    var notifySuccess: String?

    @Option(help: "A URL notified (POST, JSON) when an async invocation fails or expires.")
    var notifyError: String?

    @Option(help: "A secret that signs notifications (X-Serval-Signature: sha256=HMAC of the body).")
    var notifySecret: String?

    @Option(help: "Capture a share of requests and responses as JSON Lines under this s3://bucket/prefix.")
    var capture: String?

    @Option(help: "The share of invocations captured, 0-100 (default 100).")
    var capturePercent: Int?

    @Option(help: "What is captured: input, output or input,output (the default).")
    var captureMode: String?

    @OptionGroup var options: ServerOptions

    func validate() throws {
        if capture == nil && (capturePercent != nil || captureMode != nil) {
            throw ValidationError("--capture-percent and --capture-mode need --capture s3://bucket/prefix.")
        }
        if asyncOutput == nil && [asyncFailure, notifySuccess, notifyError, notifySecret].contains(where: { $0 != nil }) {
            throw ValidationError("--async-failure, --notify-success, --notify-error and --notify-secret need --async-output.")
        }
        if asyncOutput == nil && asyncMaxConcurrency != nil {
            throw ValidationError("--async-max-concurrency needs --async-output.")
        }
    }

    func run() async throws {
        try await reportingErrors {
            let client = options.client
            print("Uploading \(path) as model \(name)…")
            let model = try await client.createModel(name: name, package: path)
            print("Stored model \(name) (\(model.artifact)\(model.hasInferenceCode ? ", code/inference.py" : "")).")
            _ = try await client.createEndpointConfig(
                EndpointConfigDescription(
                    name: name,
                    variants: [VariantConfig(model: name, instanceCount: instances, maxBatchSize: maxBatchSize, maxQueueDelayMs: maxDelayMs)],
                    asyncInference: asyncOutput.map {
                        AsyncInferenceSettings(
                            outputPath: $0, failurePath: asyncFailure, maxConcurrentInvocationsPerInstance: asyncMaxConcurrency,
                            successWebhook: notifySuccess, errorWebhook: notifyError, webhookSecret: notifySecret)
                    },
                    dataCapture: capture.map {
                        DataCaptureSettings(
                            destination: $0, samplingPercentage: capturePercent,
                            captureModes: captureMode.map { modes in
                                modes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).capitalized }
                            })
                    }))
            _ = try await client.createEndpoint(name: name, config: name)
            print("Endpoint \(name) is Creating; waiting for the model to load…")
            let endpoint = try await client.waitForEndpoint(name)
            guard endpoint.status == "InService" else {
                FileHandle.standardError.write(
                    Data("error: endpoint \(name) is \(endpoint.status): \(endpoint.failureReason ?? "no reason given")\n".utf8))
                throw ExitCode.failure
            }
            print("Endpoint \(name) is InService: POST \(client.baseURL)/endpoints/\(name)/invocations")
            if let capture {
                print("It captures \(capturePercent ?? 100)% of invocations under \(capture)/\(name)/.")
            }
            if asyncOutput != nil {
                print("It takes async invocations: POST \(client.baseURL)/endpoints/\(name)/async-invocations, or `serval async submit \(name)`")
            }
        }
    }
}

/// `serval invoke`: one real-time request.
struct Invoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Send one request to an endpoint and print the answer.")

    @Argument(help: "The endpoint.")
    var name: String

    @Option(help: "The body's content type.")
    var contentType = "application/json"

    @Option(help: "The content type to ask for.")
    var accept: String?

    @Option(help: "The body: text, @FILE to read a file, or - to read standard input.")
    var body: String

    @OptionGroup var options: ServerOptions

    func run() async throws {
        try await reportingErrors {
            let data = try readBody(body)
            // A model still loading answers 429 with Retry-After; wait for it, up to a minute, as SDKs retry.
            let deadline = ContinuousClock.now + .seconds(60)
            var response = try await options.client.invoke(
                name, body: ByteBuffer(bytes: data), contentType: contentType, accept: accept)
            while response.status == 429 && ContinuousClock.now < deadline {
                let seconds = Int(response.header("Retry-After") ?? "") ?? 1
                try await Task.sleep(for: .seconds(max(1, min(seconds, 10))))
                response = try await options.client.invoke(
                    name, body: ByteBuffer(bytes: data), contentType: contentType, accept: accept)
            }
            guard response.status == 200 else { throw ServalClient.error(from: response) }
            FileHandle.standardOutput.write(Data(response.body.readableBytesView))
            if response.body.readableBytesView.last != UInt8(ascii: "\n") { print() }
        }
    }
}

/// `serval models ...`.
struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models", abstract: "Manage models.",
        subcommands: [Create.self, List.self, Describe.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Upload a model package without deploying it.")
        @Argument var name: String
        @Argument(help: "The model package: a folder, .tar or .tar.gz.") var path: String
        @OptionGroup var options: ServerOptions
        func run() async throws {
            try await reportingErrors { try printJSON(try await options.client.createModel(name: name, package: path)) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List models.")
        @OptionGroup var options: ServerOptions
        func run() async throws {
            try await reportingErrors { try printJSON(try await options.client.models()) }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Describe a model.")
        @Argument var name: String
        @OptionGroup var options: ServerOptions
        func run() async throws {
            try await reportingErrors { try printJSON(try await options.client.model(name)) }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a model and its stored package.")
        @Argument var name: String
        @OptionGroup var options: ServerOptions
        func run() async throws {
            try await reportingErrors {
                try await options.client.deleteModel(name)
                print("Deleted model \(name).")
            }
        }
    }
}

/// `serval endpoints ...`.
struct EndpointsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "endpoints", abstract: "Manage endpoints.", subcommands: [List.self, Describe.self, Delete.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List endpoints (JSON).")
        @Option(help: "Only endpoints in this status (InService, Creating, Updating, Failed, Deleting, ...).") var status: String?
        @Option(help: "Only endpoints whose name contains this text (case-insensitive).") var nameContains: String?
        @Option(help: "Only endpoints whose config serves this model.") var model: String?
        @OptionGroup var options: ServerOptions
        func run() async throws {
            try await reportingErrors {
                try printJSON(try await options.client.endpoints(status: status, nameContains: nameContains, model: model))
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Describe an endpoint: its deploy card (status, URLs, and per variant instances, traffic, latency, batching, errors and memory over the last minute).")
        @Argument var name: String
        @Flag(help: "Print the REST description as JSON instead.") var json = false
        @OptionGroup var options: ServerOptions
        func run() async throws {
            try await reportingErrors {
                let endpoint = try await options.client.endpoint(name)
                if json { try printJSON(endpoint) } else { print(DeployCard(endpoint).text, terminator: "") }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete an endpoint: it drains, its workers stop, and it is removed. Its config and model stay.")
        @Argument var name: String
        @Flag(help: "Return at once instead of waiting until it is gone.") var noWait = false
        @OptionGroup var options: ServerOptions
        func run() async throws {
            try await reportingErrors {
                _ = try await options.client.deleteEndpoint(name)
                if !noWait { try await options.client.waitForEndpointDeleted(name) }
                print(noWait ? "Endpoint \(name) is Deleting." : "Deleted endpoint \(name).")
            }
        }
    }
}
