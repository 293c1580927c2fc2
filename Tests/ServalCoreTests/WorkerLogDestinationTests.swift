import ServalCore
import Testing

@Suite("Worker log groups and streams")
struct WorkerLogDestinationTests {
    @Test("an endpoint's workers get a new stream <variant>/i-<17 hex> at every start")
    func endpointStreams() {
        let destination = WorkerLogDestination.endpoint("churn", variant: "AllTraffic")
        let first = destination.stream(slot: 0)
        let again = destination.stream(slot: 0)
        #expect(first.group == "/aws/sagemaker/Endpoints/churn")
        #expect(first.name != again.name)
        for stream in [first, again] {
            let parts = stream.name.split(separator: "/")
            #expect(parts.count == 2 && parts[0] == "AllTraffic" && parts[1].hasPrefix("i-"))
            #expect(parts[1].dropFirst(2).count == 17 && parts[1].dropFirst(2).allSatisfy { $0.isHexDigit && !$0.isUppercase })
        }
    }

    @Test("a transform job has one stream per instance slot for its whole life: <job>/i-0<16 hex>-<creation epoch>")
    func transformJobStreams() {
        let created = Timestamp(millisecondsSinceEpoch: 1_800_000_000_123)
        let destination = WorkerLogDestination.transformJob("scores", createdAt: created)
        let slot0 = destination.stream(slot: 0)
        #expect(slot0 == destination.stream(slot: 0), "a restarted worker writes on in its slot's stream")
        #expect(slot0 == WorkerLogDestination.transformJob("scores", createdAt: created).stream(slot: 0), "also after Serval restarts")
        #expect(slot0 != destination.stream(slot: 1))
        #expect(slot0 != WorkerLogDestination.transformJob("scores2", createdAt: created).stream(slot: 0))
        #expect(slot0.group == "/aws/sagemaker/TransformJobs")
        let name = slot0.name
        #expect(name.hasPrefix("scores/i-0") && name.hasSuffix("-1800000000"), "\(name)")
        #expect(name.count == "scores/".count + 2 + 17 + "-1800000000".count, "\(name)")
    }
}
