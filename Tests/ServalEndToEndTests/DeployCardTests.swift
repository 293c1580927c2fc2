import Foundation
import NIOCore
import NIOHTTP1
import ServalAPI
import ServalClient
import Testing

/// `serval endpoints describe` and the REST describe: the deploy card of a running endpoint; and the list's filters.
@Suite("Deploy card", .serialized)
struct DeployCardTests {
    @Test("the card shows instances, URLs, traffic, latency, batching, errors and memory over the last minute")
    func card() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        let model = try await Packages.logisticRegression(in: folder.path)
        #expect(try await server.deploy(model.path, name: "churn", maxBatchSize: 4, maxDelayMs: 1).status == "InService")
        let rows = model.probe.map { $0.map { String($0) }.joined(separator: ",") }
        for row in rows {
            let answer = try await server.client.invoke(
                "churn", body: ByteBuffer(string: row + "\n"), contentType: "text/csv", accept: nil)
            #expect(answer.status == 200)
        }
        let bad = try await server.client.invoke("churn", body: ByteBuffer(string: "1,2\n"), contentType: "text/csv", accept: nil)
        #expect(bad.status == 424)

        let described = try await server.client.endpoint("churn")
        let variant = try #require(described.variants.first)
        #expect(variant.model == "churn" && variant.readyInstances == 1 && variant.loadingInstances == 0 && variant.failedInstances == 0)
        #expect(variant.invocationsLastMinute == rows.count + 1 && variant.errorsLastMinute == 1)
        #expect(variant.requestsPerSecond > 0)
        #expect((variant.latencyP50Ms ?? 0) > 0 && (variant.latencyP99Ms ?? 0) >= (variant.latencyP50Ms ?? 0))
        #expect((variant.averageBatchSize ?? 0) >= 1)
        #expect(variant.workerMemoryBytes > 10_000_000)
        let urls = try #require(described.urls)
        #expect(urls.sageMaker == "\(server.url)/endpoints/churn/invocations")
        #expect(urls.openInference.hasSuffix("/v2/models/churn/infer"))
        #expect(urls.grpc == "127.0.0.1:\(server.grpcPort)")

        let printed = try await run([servalBinary, "endpoints", "describe", "churn"], environment: ["SERVAL_URL": server.url])
        #expect(printed.status == 0)
        for expected in [
            "Endpoint churn — InService", "POST \(server.url)/endpoints/churn/invocations", "127.0.0.1:\(server.grpcPort)",
            "1 ready, 0 loading, 0 failed; 1 desired", "\(rows.count + 1) invocations, 1 errors", "req/s, p50 ", "worker memory",
        ] {
            #expect(printed.output.contains(expected), "\(printed.output)")
        }
    }

    @Test("endpoints list filters by status, name and model; an unknown status is a 400 naming the field")
    func listFilters() async throws {
        let folder = try TemporaryFolder()
        let server = try await ServalServer()
        let model = try await Packages.logisticRegression(in: folder.path)
        #expect(try await server.deploy(model.path, name: "fraud-a").status == "InService")
        #expect(try await server.deploy(model.path, name: "churn-b").status == "InService")
        let client = server.client
        #expect(try await client.endpoints().map(\.name).sorted() == ["churn-b", "fraud-a"])
        #expect(try await client.endpoints(nameContains: "FRAUD").map(\.name) == ["fraud-a"])
        #expect(try await client.endpoints(model: "churn-b").map(\.name) == ["churn-b"])
        #expect(try await client.endpoints(status: "InService", model: "nothing").isEmpty)
        #expect(try await client.endpoints(status: "Failed").isEmpty)
        let refused = try await client.send(.GET, "/endpoints?status=Sleeping")
        #expect(refused.status == 400)
        #expect(String(buffer: refused.body).contains("status"))
        let listed = try await run(
            [servalBinary, "endpoints", "list", "--name-contains", "churn"], environment: ["SERVAL_URL": server.url])
        #expect(listed.output.contains("churn-b") && !listed.output.contains("fraud-a"), "\(listed.output)")
    }
}
