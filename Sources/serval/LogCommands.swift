import ArgumentParser
import Foundation
import ServalAPI
import ServalClient
import ServalCore

/// `serval logs NAME`: what an endpoint's (or, with `--transform-job`, a transform job's) model workers printed.
struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print what an endpoint's model workers printed (or a transform job's, with --transform-job).",
        discussion: """
            Each line is printed as TIME STREAM MESSAGE, oldest first; the stream is <variant>/<instance id> for \
            an endpoint and <job>/<instance id>-<epoch> for a transform job, a new one each time a worker starts. \
            Without --follow the command prints what there is and exits; with it, it keeps printing new lines \
            until interrupted.
            """)

    @Argument(help: "The endpoint (or, with --transform-job, the transform job).")
    var name: String

    @Flag(help: "NAME is a transform job.")
    var transformJob = false

    @Flag(name: [.short, .long], help: "Keep printing new lines until interrupted.")
    var follow = false

    @Option(help: "Only lines printed at or after this time: ISO 8601 (2026-12-07T10:00:00Z), epoch seconds, or an age such as 30s, 10m, 2h or 1d.")
    var since: String?

    @OptionGroup var options: ServerOptions

    func run() async throws {
        try await reportingErrors {
            let source: ServalClient.LogSource = transformJob ? .transformJob(name) : .endpoint(name)
            let since = try since.map { try Self.time($0, now: Date()) }
            let client = options.client
            let pageSize = 1000
            var token: String?
            while true {
                let page = try await client.logs(source, since: since, limit: pageSize, nextToken: token)
                var text = ""
                for event in page.events { text += "\(event.time) \(event.stream) \(event.message)\n" }
                FileHandle.standardOutput.write(Data(text.utf8))
                token = page.nextToken
                if page.events.count == pageSize { continue }
                guard follow else { return }
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// A `--since` value as a time: ISO 8601, epoch seconds, or an age before `now` (`30s`, `10m`, `2h`, `1d`).
    static func time(_ text: String, now: Date) throws(ServalError) -> Timestamp {
        if let time = Timestamp(iso8601: text) { return time }
        if let seconds = Double(text), seconds.isFinite, seconds >= 0 {
            return Timestamp(millisecondsSinceEpoch: Int64(seconds * 1000))
        }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        if let unit = text.last.flatMap({ units[$0] }), let count = Double(text.dropLast()), count.isFinite, count >= 0 {
            return Timestamp(millisecondsSinceEpoch: Int64((now.timeIntervalSince1970 - count * unit) * 1000))
        }
        throw .invalid("--since", "\"\(text)\" is not an ISO 8601 time, epoch seconds or an age like 10m.")
    }
}
