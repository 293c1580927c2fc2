import Foundation
import NIOCore
import ServalCore
import ServalRuntime
import ServalServices
import ServalStore
import ServalWorkerIPC
import ServalWorkerFake
import Testing

@Suite("InferenceService over fake workers: the one entry for SageMaker and OIP requests")
struct InferenceServiceTests {
    /// An endpoint `e` with variants A (model a, weight 1) and B (model b, weight 0: only reached when targeted).
    static func twoVariants(_ body: (ServicesFixture, FakeWorkerLauncher, EndpointManager, InferenceService) async throws -> Void) async throws {
        let fixture = try ServicesFixture()
        try await fixture.models("a", "b")
        try await fixture.config(
            "c",
            [
                variant(name: "A", modelName: "a", weight: 1),
                variant(
                    name: "B", modelName: "b", weight: 0,
                    batching: BatchingSettings(maxBatchSize: 8, maxQueueDelayMicroseconds: 0, maxQueueSize: 64)),
            ])
        var b = FakeModel()
        b.answer = { request in .success(InvocationResponse(body: ByteBuffer(string: "B"), contentType: "text/plain")) }
        let launcher = FakeWorkerLauncher(models: ["a": FakeModel(), "b": b])
        try await fixture.running(launcher) { manager, inference in
            _ = try await manager.create(name: "e", configName: "c")
            #expect(try await fixture.endpoint("e") { $0.status == .inService } != nil)
            try await body(fixture, launcher, manager, inference)
        }
    }

    @Test("SageMaker invocations: split by weight, or sent to the target variant; each counted once by its variant")
    func invoke() async throws {
        try await Self.twoVariants { fixture, launcher, _, inference in
            for _ in 0..<5 {
                let (response, variant) = try await inference.invoke(endpoint: "e", request: csv("2,3"), targetVariant: nil)
                #expect(variant == "A" && String(buffer: response.body) == "5")
            }
            let (targeted, variant) = try await inference.invoke(endpoint: "e", request: csv("2,3"), targetVariant: "B")
            #expect(variant == "B" && String(buffer: targeted.body) == "B" && targeted.contentType == "text/plain")

            let unknown = await caught { try await inference.invoke(endpoint: "e", request: csv("1"), targetVariant: "C") }
            #expect(unknown?.code == .validationError)
            #expect(unknown?.message.contains("has no variant \"C\"") == true && unknown?.message.contains("A, B") == true)

            let bad = await caught { try await inference.invoke(endpoint: "e", request: csv("1,x"), targetVariant: nil) }
            #expect(bad?.code == .modelError && bad?.modelStatusCode == 400)

            let ended = fixture.observer.ended
            let a = VariantLabels(endpoint: "e", variant: "A", model: "a")
            #expect(ended.filter { $0.labels == a && $0.failure == nil && $0.path == .sageMaker }.count == 5)
            #expect(ended.filter { $0.labels.variant == "B" }.map(\.failure) == [nil])
            #expect(ended.filter { $0.labels == a && $0.failure == .modelError }.count == 1)
            // An unknown variant is refused before any variant is picked: nothing counts it.
            #expect(ended.count == 7)
            #expect(launcher.batches(model: "a").count == 6 && launcher.batches(model: "b").count == 1)
        }
    }

    @Test("real-time limits are checked before the model: an empty or oversized body is refused")
    func realTimeLimits() async throws {
        try await Self.twoVariants { fixture, launcher, _, inference in
            let empty = await caught { try await inference.invoke(endpoint: "e", request: csv(""), targetVariant: nil) }
            #expect(empty?.code == .validationError && empty?.message.contains("body is empty") == true)
            let huge = InvocationRequest(
                body: ByteBuffer(repeating: 0x31, count: InvocationLimits.maxPayloadBytes + 1), contentType: "text/csv",
                accept: "", customAttributes: "")
            let tooLarge = await caught { try await inference.invoke(endpoint: "e", request: huge, targetVariant: nil) }
            #expect(tooLarge?.code == .payloadTooLarge)
            #expect(launcher.batches().isEmpty)
            #expect(fixture.observer.ended.map(\.failure) == [.validation, .validation])

            // An asynchronous invocation brings its own timeout and limits, checked when it was accepted.
            let (response, _) = try await inference.invoke(
                endpoint: "e", request: csv("4,4"), targetVariant: nil,
                context: InferenceContext(path: .async, timeoutSeconds: 30, inferenceID: "i-1"))
            #expect(String(buffer: response.body) == "8")
            #expect(fixture.observer.ended.last?.path == .async)
        }
    }

    @Test("unknown, loading and failed endpoints answer 404, 503 with Retry-After, and 503 with the reason")
    func endpointStates() async throws {
        let fixture = try ServicesFixture()
        try await fixture.models("m", "broken")
        try await fixture.config("c", [variant(name: "AllTraffic", modelName: "m")])
        try await fixture.config("f", [variant(name: "AllTraffic", modelName: "broken")])
        let gate = FakeGate()
        var loading = FakeModel()
        loading.loadGate = gate
        let launcher = FakeWorkerLauncher(models: ["m": loading, "broken": .failsToLoad("RuntimeError: CUDA is not available")])
        try await fixture.running(launcher) { manager, inference in
            let missing = await caught { try await inference.invoke(endpoint: "nope", request: csv("1"), targetVariant: nil) }
            #expect(missing?.code == .notFound)
            #expect(await caught { try await inference.isReady(model: "nope", version: nil) }?.code == .notFound)

            _ = try await manager.create(name: "slow", configName: "c")
            let notReady = await caught { try await inference.invoke(endpoint: "slow", request: csv("1"), targetVariant: nil) }
            #expect(notReady?.code == .modelNotReady && notReady?.retryAfterSeconds == 1)
            #expect(try await inference.isReady(model: "slow", version: nil) == false)
            let noMetadata = await caught { try await inference.metadata(model: "slow", version: nil) }
            #expect(noMetadata?.code == .modelNotReady)

            _ = try await manager.create(name: "failed", configName: "f")
            #expect(try await fixture.endpoint("failed") { $0.status == .failed } != nil)
            let failed = await caught { try await inference.infer(model: "failed", version: nil, request: row([1]), context: .init(path: .oipREST)) }
            #expect(failed?.code == .serviceUnavailable)
            #expect(failed?.message.contains("RuntimeError: CUDA is not available") == true)
            gate.open()
            #expect(try await fixture.endpoint("slow") { $0.status == .inService } != nil)
            #expect(try await inference.isReady(model: "slow", version: nil))
        }
    }

    @Test("Open Inference Protocol: infer by model or version, metadata from READY, statistics per version")
    func openInferenceProtocol() async throws {
        try await Self.twoVariants { fixture, launcher, _, inference in
            #expect(try await inference.isReady(model: "e", version: nil))
            #expect(try await inference.isReady(model: "e", version: "B"))
            let (response, version, _) = try await inference.infer(
                model: "e", version: nil, request: row([1, 2, 3.5]), context: InferenceContext(path: .oipREST))
            #expect(version == "A")
            #expect(response.outputs.map(\.name) == ["sum"] && response.outputs[0].shape == [1])
            #expect(response.outputs[0].data.getInteger(at: 0, endianness: .little, as: UInt64.self).map(Double.init(bitPattern:)) == 6.5)

            let (_, targeted, _) = try await inference.infer(
                model: "e", version: "B", request: row([1]), context: InferenceContext(path: .oipGRPC))
            #expect(targeted == "B")
            let unknown = await caught {
                try await inference.infer(model: "e", version: "Z", request: row([1]), context: InferenceContext(path: .oipREST))
            }
            #expect(unknown?.code == .notFound && unknown?.message.contains("versions (variants) are A, B") == true)
            let invalid = await caught {
                try await inference.infer(
                    model: "e", version: nil, request: InferenceRequest(inputs: []), context: InferenceContext(path: .oipREST))
            }
            #expect(invalid?.code == .validationError)

            let metadata = try await inference.metadata(model: "e", version: "B")
            #expect(metadata.versions == ["A", "B"] && metadata.maxBatchSize == 8)
            #expect(metadata.signature.inputs == FakeReady.rowSums.inputs && metadata.signature.platform == "sklearn")

            let statistics = try await inference.statistics(model: "e", version: nil)
            #expect(statistics.map(\.version) == ["A", "B"])
            #expect(statistics.map(\.statistics.success.count) == [1, 1])
            #expect(statistics.map(\.statistics.inferenceCount) == [1, 1])
            #expect(launcher.batches().map(\.kind) == [.infer, .infer])

            let paths = fixture.observer.ended.map { "\($0.labels.variant) \($0.path.rawValue) \($0.failure?.rawValue ?? "ok")" }
            #expect(paths == ["A oip_rest ok", "B oip_grpc ok", "A oip_rest validation"])
        }
    }

    @Test("a request whose variant an update retired, and whose worker then died, is answered by the new variant")
    func retryAcrossUpdate() async throws {
        let fixture = try ServicesFixture()
        try await fixture.models("m1", "m2")
        try await fixture.config("c1", [variant(name: "AllTraffic", modelName: "m1")])
        try await fixture.config("c2", [variant(name: "AllTraffic", modelName: "m2")])
        let crash = FakeGate()
        var old = FakeModel.echo(tag: "v1:")
        old.batches[1] = .crash(exitCode: 1, after: crash)
        let launcher = FakeWorkerLauncher(models: ["m1": old, "m2": .echo(tag: "v2:")])
        try await fixture.running(launcher) { manager, inference in
            _ = try await manager.create(name: "e", configName: "c1")
            #expect(try await fixture.endpoint("e") { $0.status == .inService } != nil)
            let oldVariant = try await manager.runtime(for: "e").variant(target: nil)
            try await withThrowingTaskGroup(of: String.self) { group in
                group.addTask {
                    let (response, _) = try await inference.invoke(endpoint: "e", request: csv("r"), targetVariant: nil)
                    return String(buffer: response.body)
                }
                // The request is in the old worker when the update switches traffic; the old variant drains.
                #expect(await eventually { await oldVariant.status().inFlight == 1 })
                _ = try await manager.update(name: "e", configName: "c2")
                #expect(try await fixture.endpoint("e") { $0.status == .inService && $0.configName == "c2" } != nil)
                crash.open()
                #expect(try await group.next() == "v2:r")
            }
            #expect(launcher.exits()[1] == .exited(1))
            #expect(launcher.batches().map(\.model) == ["m1", "m2"])
            // One invocation, counted once, by the variant that answered.
            #expect(
                fixture.observer.ended
                    == [.init(labels: VariantLabels(endpoint: "e", variant: "AllTraffic", model: "m2"), path: .sageMaker, failure: nil)])
        }
    }
}
