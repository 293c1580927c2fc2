import ArgumentParser
import Foundation
import NIOCore
import ServalClient
import ServalCore

/// Options every object command shares.
struct ObjectAPIOptions: ParsableArguments {
    @Option(name: .customLong("s3-url"), help: "The URL of Serval's S3-compatible object API (or SERVAL_S3_URL).")
    var s3URL: String?

    /// A client signing its requests with `apiKey` when one is given.
    func client(apiKey: String?) -> ObjectClient {
        ObjectClient(
            baseURL: s3URL ?? ProcessInfo.processInfo.environment["SERVAL_S3_URL"] ?? "http://127.0.0.1:9000",
            apiKey: apiKey)
    }
}

/// `serval objects`: copy files to and from Serval's object store and list it.
struct ObjectsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "objects", abstract: "Upload, download and list objects in Serval's object store.",
        subcommands: [Put.self, Get.self, List.self])

    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Upload a file to s3://bucket/key (streamed; the bucket is created if missing).")

        @Argument(help: "The file to upload.")
        var file: String

        @Argument(help: "The destination, s3://bucket/key.")
        var destination: String

        @Option(help: "The object's content type (default application/octet-stream).")
        var contentType: String?

        @OptionGroup var options: ObjectAPIOptions
        @OptionGroup var key: APIKeyOptions

        func run() async throws {
            try await reportingErrors {
                let location = try ObjectLocation(uri: destination, field: "destination")
                let etag = try await options.client(apiKey: key.resolved).put(file: file, to: location, contentType: contentType)
                print("\(location.uri)\t\(etag)")
            }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download s3://bucket/key to a file (default: the key's last segment), or to standard output with -.")

        @Argument(help: "The object, s3://bucket/key.")
        var source: String

        @Argument(help: "The file to write, or - for standard output.")
        var file: String?

        @OptionGroup var options: ObjectAPIOptions
        @OptionGroup var key: APIKeyOptions

        func run() async throws {
            try await reportingErrors {
                let location = try ObjectLocation(uri: source, field: "source")
                let destination = file ?? String(location.key.split(separator: "/").last!)
                if destination == "-" {
                    try await options.client(apiKey: key.resolved).get(location) { chunk in
                        try FileHandle.standardOutput.write(contentsOf: chunk.readableBytesView)
                    }
                } else {
                    try await options.client(apiKey: key.resolved).get(location, toFile: destination)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "List the buckets, or the objects of s3://bucket[/prefix] one folder level at a time.")

        @Argument(help: "s3://bucket or s3://bucket/prefix; none lists the buckets.")
        var location: String?

        @Flag(help: "List every object under the prefix instead of one level.")
        var recursive = false

        @OptionGroup var options: ObjectAPIOptions
        @OptionGroup var key: APIKeyOptions

        func run() async throws {
            try await reportingErrors {
                let client = options.client(apiKey: key.resolved)
                guard let location else {
                    for bucket in try await client.buckets() { print("s3://\(bucket)") }
                    return
                }
                let (bucket, prefix) = try ObjectLocation.split(uri: location, field: "location")
                let listing = try await client.list(bucket: bucket, prefix: prefix, delimiter: recursive ? nil : "/")
                for common in listing.commonPrefixes { print("\(String(repeating: " ", count: 29))PRE \(common)") }
                for object in listing.objects {
                    let size = String(object.size)
                    print("\(object.lastModified)  \(String(repeating: " ", count: max(0, 12 - size.count)))\(size)  \(object.key)")
                }
            }
        }
    }
}
