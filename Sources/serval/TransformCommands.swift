import ArgumentParser
import Foundation
import ServalAPI
import ServalClient
import ServalCore

/// `serval transform ...`: batch transform jobs.
struct TransformCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transform", abstract: "Run a model over every file under an object store prefix (batch transform).",
        subcommands: [Create.self, Describe.self, List.self, Stop.self, Wait.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a transform job and print its description (or, with --wait, wait for it to end).")

        @Argument(help: "The job's name (unique).") var name: String
        @Option(help: "The model to run.") var model: String
        @Option(help: "The inputs: s3://bucket/prefix (every object under it).") var input: String
        @Flag(help: "--input names a manifest: [{\"prefix\": \"s3://bucket/prefix/\"}, \"key1\", ...].") var manifest = false
        @Option(help: "Where outputs go: s3://bucket/prefix; each input gets <relative key>.out.") var output: String
        @Option(help: "The records' content type, e.g. text/csv or application/jsonlines.") var contentType: String?
        @Option(help: "None or Gzip.") var compression: String?
        @Option(help: "None (each object is one record), Line, RecordIO or TFRecord.") var splitType: String?
        @Option(help: "MultiRecord (as many records per invocation as fit in --max-payload-mb) or SingleRecord.") var strategy: String?
        @Option(help: "The largest payload per invocation, in MB (1-100; default 6).") var maxPayloadMb: Int?
        @Option(help: "Invocations each instance runs at once (default 1; × max payload ≤ 100).") var concurrency: Int?
        @Option(help: "Worker instances the job starts (1-64; default 1).") var instances: Int?
        @Option(help: "Recorded only.") var instanceType: String?
        @Option(help: "Seconds one invocation may run (1-3600; default 600).") var timeout: Int?
        @Option(help: "Retries of a failed invocation (0-3; default 3).") var retries: Int?
        @Option(help: "The content type to ask the model for.") var accept: String?
        @Option(help: "None (responses as they are) or Line (one line per record).") var assembleWith: String?
        @Option(help: "None or Input (join each input record with its output).") var joinSource: String?
        @Option(help: "JSONPath selecting what of each record is sent, e.g. $[1:] or $.features.") var inputFilter: String?
        @Option(help: "JSONPath selecting what of each output record is written.") var outputFilter: String?
        @Option(help: "KEY=VALUE environment for the job's workers (repeatable).") var env: [String] = []
        @Flag(help: "Wait until the job ends, showing progress; exit 1 unless it Completed.") var wait = false
        @OptionGroup var options: ServerOptions

        func run() async throws {
            try await reportingErrors {
                var environment: [String: String] = [:]
                for entry in env {
                    guard let equals = entry.firstIndex(of: "=") else {
                        throw ServalError.invalid("--env", "\"\(entry)\" is not KEY=VALUE.")
                    }
                    environment[String(entry[..<equals])] = String(entry[entry.index(after: equals)...])
                }
                let request = CreateTransformJobRequest(
                    TransformJobName: name, ModelName: model, MaxConcurrentTransforms: concurrency,
                    MaxPayloadInMB: maxPayloadMb, BatchStrategy: strategy,
                    ModelClientConfig: timeout == nil && retries == nil
                        ? nil : .init(InvocationsTimeoutInSeconds: timeout, InvocationsMaxRetries: retries),
                    Environment: environment.isEmpty ? nil : environment,
                    TransformInput: .init(
                        DataSource: .init(S3DataSource: .init(S3DataType: manifest ? "ManifestFile" : "S3Prefix", S3Uri: input)),
                        ContentType: contentType, CompressionType: compression, SplitType: splitType),
                    TransformOutput: .init(S3OutputPath: output, Accept: accept, AssembleWith: assembleWith),
                    TransformResources: .init(InstanceType: instanceType, InstanceCount: instances),
                    DataProcessing: inputFilter == nil && outputFilter == nil && joinSource == nil
                        ? nil : .init(InputFilter: inputFilter, OutputFilter: outputFilter, JoinSource: joinSource))
                let job = try await options.client.createTransformJob(request)
                if wait {
                    try await Wait.follow(name, client: options.client)
                } else {
                    try printJSON(job)
                }
            }
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a job's description (SageMaker's DescribeTransformJob fields plus Progress) as JSON.")

        @Argument(help: "The job.") var name: String
        @OptionGroup var options: ServerOptions

        func run() async throws {
            try await reportingErrors { try printJSON(try await options.client.transformJob(name)) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List jobs, newest first, as JSON.")

        @Option(help: "Only jobs whose name contains this.") var nameContains: String?
        @Option(help: "Only jobs with this status (InProgress, Completed, Failed, Stopping, Stopped).") var status: String?
        @Option(help: "At most this many (1-100).") var maxResults: Int?
        @Option(help: "The NextToken of the previous page.") var nextToken: String?
        @OptionGroup var options: ServerOptions

        func run() async throws {
            try await reportingErrors {
                try printJSON(
                    try await options.client.transformJobs(
                        nameContains: nameContains, status: status, maxResults: maxResults, nextToken: nextToken))
            }
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop a job: units in flight finish, then it is Stopped. Prints its description.")

        @Argument(help: "The job.") var name: String
        @OptionGroup var options: ServerOptions

        func run() async throws {
            try await reportingErrors { try printJSON(try await options.client.stopTransformJob(name)) }
        }
    }

    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait until a job ends, with a progress bar on standard error; print its description, and exit 1 unless it Completed.")

        @Argument(help: "The job.") var name: String
        @OptionGroup var options: ServerOptions

        func run() async throws {
            try await reportingErrors { try await Self.follow(name, client: options.client) }
        }

        /// Waits for the job, drawing progress on standard error when it is a terminal (a line per change
        /// otherwise), then prints the description.
        static func follow(_ name: String, client: ServalClient) async throws {
            let terminal = isatty(STDERR_FILENO) != 0
            var last = ""
            let job = try await client.waitForTransformJob(name) { job in
                let line = progressLine(job)
                guard line != last else { return }
                last = line
                FileHandle.standardError.write(Data((terminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
            }
            if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
            try printJSON(job)
            if job.TransformJobStatus != "Completed" { throw ExitCode.failure }
        }

        static func progressLine(_ job: TransformJobDescription) -> String {
            let progress = job.Progress
            let total = max(progress.RecordsTotal, 1)
            let fraction = Double(progress.RecordsDone) / Double(total)
            let width = 30
            let filled = min(width, Int(fraction * Double(width)))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            var line = "\(job.TransformJobStatus) [\(bar)] \(Int(fraction * 100))% \(progress.RecordsDone)/\(progress.RecordsTotal) records, \(progress.ObjectsDone)/\(progress.ObjectsTotal) objects"
            if let rate = progress.RecordsPerSecond { line += ", \(Int(rate)) records/s" }
            if let eta = progress.EtaSeconds { line += ", ETA \(Int(eta.rounded()))s" }
            if progress.RecordsFailed > 0 { line += ", \(progress.RecordsFailed) failed" }
            return line
        }
    }
}
