import Foundation
import Logging
import NIOCore
import ServalArtifacts
import ServalCore
@testable import ServalJobs
import ServalObjects
import ServalServices
import ServalStore
import ServalWorkerFake
import ServiceLifecycle
import Synchronization
import Testing

/// A clock the test moves by hand.
final class ManualClock: WallClock {
    private let current: Mutex<Int64>

    init(_ start: Int64) {
        current = Mutex(start)
    }

    func now() -> Timestamp {
        Timestamp(millisecondsSinceEpoch: current.withLock { $0 })
    }

    func advance(seconds: Int64) {
        current.withLock { $0 += seconds * 1000 }
    }
}

/// A dispatcher over a real SQLite store and a real local object store in a temporary folder. Its endpoint
/// exists in the store but has no running workers, so nothing in these tests runs a model.
struct DispatcherFixture {
    let folder: String
    let store: SQLiteMetadataStore
    let objects: LocalObjectStore
    let clock: ManualClock
    let dispatcher: AsyncDispatcher
    let service: AsyncInvocationService

    init(config: AsyncInferenceConfig) async throws {
        folder = NSTemporaryDirectory() + "serval-jobs-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        store = try SQLiteMetadataStore(path: folder + "/serval.sqlite")
        objects = try LocalObjectStore(root: folder + "/objects")
        clock = ManualClock(1_800_000_000_000)
        let logger = Logger(label: "test")
        let variants = VariantFactory(launcher: FakeWorkerLauncher(), logger: logger)
        let endpoints = EndpointManager(
            store: store, packages: PackageStore(dataDirectory: folder), variants: variants, clock: clock, logger: logger)
        dispatcher = AsyncDispatcher(
            store: store, objects: objects, inference: InferenceService(endpoints: endpoints), clock: clock,
            settings: AsyncSettings(
                owner: "test", leaseDuration: .seconds(30), pollInterval: .milliseconds(20), webhookTimeout: .seconds(1)),
            logger: logger)
        service = AsyncInvocationService(store: store, objects: objects, dispatcher: dispatcher, clock: clock)
        try await store.createModel(
            Model(
                name: "m", packagePath: "models/m",
                package: ModelPackageInfo(artifact: .sklearn, hasInferenceCode: false, requirements: nil, digest: "00", sizeBytes: 1),
                environment: [:], createdAt: clock.now()))
        try await store.createEndpointConfig(
            EndpointConfig(name: "e", variants: [ProductionVariant(name: "AllTraffic", modelName: "m")], asyncInference: config, createdAt: clock.now()))
        try await store.createEndpoint(Endpoint(name: "e", configName: "e", status: .creating, createdAt: clock.now(), updatedAt: clock.now()))
    }

    /// Runs the dispatcher until `condition` holds (or 120 s pass: the end-to-end tests share the process's two
    /// pool threads), then shuts it down gracefully.
    func runDispatcher(until condition: @escaping @Sendable () async throws -> Bool) async throws {
        let group = ServiceGroup(services: [dispatcher], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let deadline = ContinuousClock.now + .seconds(120)
            var met = false
            while ContinuousClock.now < deadline {
                if try await condition() {
                    met = true
                    break
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            #expect(met, "the condition did not hold within 120 s")
        }
    }

    func destroy() {
        try? FileManager.default.removeItem(atPath: folder)
    }
}

@Suite("AsyncDispatcher")
struct AsyncDispatcherTests {
    @Test("an invocation that waits past its TTL ends Expired, with a failure object and an error notification")
    func expiry() async throws {
        let fixture = try await DispatcherFixture(
            config: AsyncInferenceConfig(outputPath: "s3://out/e", errorWebhook: "http://127.0.0.1:9/hook", webhookSecret: "k"))
        defer { fixture.destroy() }
        let (invocation, created) = try await fixture.service.submit(
            endpoint: "e", AsyncSubmission(inlineBody: ByteBuffer(string: "x"), inferenceId: "late", requestTTLSeconds: 60))
        #expect(created)
        #expect(invocation.status == .queued)
        fixture.clock.advance(seconds: 61)
        try await fixture.runDispatcher {
            try await fixture.store.asyncInvocation(endpoint: "e", id: "late")?.status == .expired
        }
        let expired = try #require(try await fixture.store.asyncInvocation(endpoint: "e", id: "late"))
        #expect(expired.failureReason?.contains("TTL") == true)
        let failure = try #require(try await fixture.objects.head(try ObjectLocation(uri: expired.failureLocation, field: "f")))
        #expect(failure.size > 0)
        // Its delivery was tried (nothing listens on port 9) and is due again later.
        let due = try await fixture.store.dueAsyncNotifications(now: Timestamp(millisecondsSinceEpoch: .max), limit: 10)
        #expect(due.count == 1)
        #expect(due.first?.url == "http://127.0.0.1:9/hook")
        #expect(due.first?.signature?.hasPrefix("sha256=") == true)
    }

    @Test("work for an endpoint that is not serving waits in the queue until its TTL")
    func waitsWhileNotServing() async throws {
        let fixture = try await DispatcherFixture(config: AsyncInferenceConfig(outputPath: "s3://out/e"))
        defer { fixture.destroy() }
        _ = try await fixture.service.submit(endpoint: "e", AsyncSubmission(inlineBody: ByteBuffer(string: "x"), inferenceId: "waiting"))
        let passes = Mutex(0)
        try await fixture.runDispatcher {
            passes.withLock { $0 += 1 }
            return passes.withLock { $0 } > 20
        }
        #expect(try await fixture.store.asyncInvocation(endpoint: "e", id: "waiting")?.status == .queued)
    }

    @Test("a cancelled invocation is Failed at once, with its failure object")
    func cancel() async throws {
        let fixture = try await DispatcherFixture(config: AsyncInferenceConfig(outputPath: "s3://out/e", failurePath: "s3://errors/e"))
        defer { fixture.destroy() }
        _ = try await fixture.service.submit(endpoint: "e", AsyncSubmission(inlineBody: ByteBuffer(string: "x"), inferenceId: "c1"))
        let cancelled = try await fixture.service.cancel(endpoint: "e", id: "c1")
        #expect(cancelled.status == .failed)
        #expect(cancelled.failureLocation == "s3://errors/e/c1-error.out")
        #expect(try await fixture.objects.head(try ObjectLocation(uri: cancelled.failureLocation, field: "f")) != nil)
        await #expect(throws: ServalError.self) { try await fixture.service.cancel(endpoint: "e", id: "c1") }
    }

    @Test("output locations follow SageMaker: prefix, optional extension, id.out or the given file name")
    func outputLocations() async throws {
        let fixture = try await DispatcherFixture(config: AsyncInferenceConfig(outputPath: "s3://out/pre/"))
        defer { fixture.destroy() }
        let plain = try await fixture.service.submit(endpoint: "e", AsyncSubmission(inlineBody: ByteBuffer(string: "x"), inferenceId: "a"))
        #expect(plain.invocation.outputLocation == "s3://out/pre/a.out")
        let named = try await fixture.service.submit(
            endpoint: "e",
            AsyncSubmission(inlineBody: ByteBuffer(string: "x"), inferenceId: "b", outputPathExtension: "/day1/", filename: "b.json"))
        #expect(named.invocation.outputLocation == "s3://out/pre/day1/b.json")
        await #expect(throws: ServalError.self) {
            try await fixture.service.submit(
                endpoint: "e", AsyncSubmission(inlineBody: ByteBuffer(string: "x"), inferenceId: "c", outputPathExtension: "../up"))
        }
    }
}

@Suite("AsyncInvocationService")
struct AsyncInvocationServiceTests {
    func invocation(input: String? = nil, body: String? = "hello", output: String = "s3://out/e/a.out") -> AsyncInvocation {
        let now = Timestamp(millisecondsSinceEpoch: 0)
        return AsyncInvocation(
            id: "a", endpointName: "e", inputLocation: input, contentType: "", accept: "", customAttributes: "",
            outputLocation: output, failureLocation: "s3://out/e/a-error.out", maxAttempts: 3, invocationTimeoutSeconds: 60,
            createdAt: now, updatedAt: now, expiresAt: now,
            inlineBodySHA256: body.map { AsyncInvocationService.sha256(Array($0.utf8)) })
    }

    @Test("a resubmission is the same invocation only with the same input, inline body digest and output")
    func conflicts() {
        #expect(AsyncInvocationService.sha256(Array("hello".utf8)) == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        #expect(AsyncInvocationService.conflict(existing: invocation(), submitted: invocation()) == nil)
        #expect(AsyncInvocationService.conflict(existing: invocation(body: "hello"), submitted: invocation(body: "hellO"))?.contains("different inline body") == true)
        #expect(AsyncInvocationService.conflict(existing: invocation(body: "hello"), submitted: invocation(body: ""))?.contains("different inline body") == true)
        let located = invocation(input: "s3://in/x", body: nil)
        #expect(AsyncInvocationService.conflict(existing: located, submitted: located) == nil)
        #expect(AsyncInvocationService.conflict(existing: located, submitted: invocation(input: "s3://in/y", body: nil))?.contains("s3://in/x") == true)
        #expect(AsyncInvocationService.conflict(existing: invocation(), submitted: located)?.contains("inline") == true)
        #expect(AsyncInvocationService.conflict(existing: located, submitted: invocation())?.contains("s3://in/x") == true)
        #expect(AsyncInvocationService.conflict(existing: invocation(), submitted: invocation(output: "s3://out/e/day/a.out")) != nil)
    }

    @Test("the same id with another inline body is a 409 conflict; with the same body the first invocation answers")
    func sameIdOtherBody() async throws {
        let fixture = try await DispatcherFixture(config: AsyncInferenceConfig(outputPath: "s3://out/e"))
        defer { fixture.destroy() }
        let first = try await fixture.service.submit(endpoint: "e", AsyncSubmission(inlineBody: ByteBuffer(string: "one"), inferenceId: "x"))
        #expect(first.created)
        #expect(first.invocation.inlineBodySHA256 == AsyncInvocationService.sha256(Array("one".utf8)))
        let again = try await fixture.service.submit(endpoint: "e", AsyncSubmission(inlineBody: ByteBuffer(string: "one"), inferenceId: "x"))
        #expect(!again.created)
        #expect(again.invocation == first.invocation)
        let error = await #expect(throws: ServalError.self) {
            try await fixture.service.submit(endpoint: "e", AsyncSubmission(inlineBody: ByteBuffer(string: "two"), inferenceId: "x"))
        }
        #expect(error?.code == .conflict)
        #expect(error?.message.contains("different inline body") == true, "\(error?.message ?? "")")
        #expect(try await fixture.store.asyncInvocationInlineBody(endpoint: "e", id: "x") == Array("one".utf8))
    }

    @Test("an invocation stored without a digest is compared by its stored body")
    func storedWithoutDigest() async throws {
        let fixture = try await DispatcherFixture(config: AsyncInferenceConfig(outputPath: "s3://out/e"))
        defer { fixture.destroy() }
        var legacy = invocation(body: nil, output: "s3://out/e/old.out")
        legacy.id = "old"
        legacy.failureLocation = "s3://out/e/old-error.out"
        _ = try await fixture.store.enqueueAsyncInvocation(legacy, inlineBody: Array("kept".utf8))
        let same = try await fixture.service.submit(endpoint: "e", AsyncSubmission(inlineBody: ByteBuffer(string: "kept"), inferenceId: "old"))
        #expect(!same.created)
        await #expect(throws: ServalError.self) {
            try await fixture.service.submit(endpoint: "e", AsyncSubmission(inlineBody: ByteBuffer(string: "other"), inferenceId: "old"))
        }
    }

    @Test("an unusable output location is blamed on what caused it, never on a header that was not sent")
    func outputLocationBlame() throws {
        func field(_ path: String, extension: String? = nil, filename: String? = nil) -> String? {
            do {
                _ = try AsyncInvocationService.outputLocation(path, id: "a", extension: `extension`, filename: filename, config: "cfg")
                return nil
            } catch {
                return error.message.components(separatedBy: ": ").first
            }
        }
        #expect(try AsyncInvocationService.outputLocation("s3://out/p/", id: "a", extension: "/d/", filename: nil, config: "cfg") == "s3://out/p/d/a.out")
        #expect(field("s3://out/../p") == "asyncInference.outputPath of endpoint config \"cfg\"")
        #expect(field("s3://out/../p", extension: "d") == "asyncInference.outputPath of endpoint config \"cfg\"")
        #expect(field("s3://out/p", extension: "../up") == "X-Amzn-SageMaker-S3OutputPathExtension")
        #expect(field("s3://out/p", filename: "..") == "X-Amzn-SageMaker-Filename")
        #expect(field("s3://out/p", filename: String(repeating: "f", count: 300)) == nil)
        #expect(field("s3://out/p", filename: String(repeating: "f", count: 1100)) == "X-Amzn-SageMaker-Filename")
        #expect(field("s3://out/p", extension: String(repeating: "e", count: 1100)) == "X-Amzn-SageMaker-S3OutputPathExtension")
        #expect(throws: ServalError.self) { try AsyncInvocationService.failureLocation("s3://out//f", id: "a", config: "cfg") }
        #expect(try AsyncInvocationService.failureLocation("s3://out/f", id: "a", config: "cfg") == "s3://out/f/a-error.out")
    }
}

@Suite("WebhookPolicy")
struct WebhookPolicyTests {
    @Test("link-local, unspecified and multicast addresses are refused whatever the list says")
    func alwaysRefused() throws {
        let any = WebhookPolicy.anyHost
        for url in ["http://169.254.169.254/latest", "http://0.0.0.0:80/", "http://224.0.0.1/", "http://[fe80::1]/", "http://[::ffff:169.254.1.1]/"] {
            #expect(throws: ServalError.self, "\(url)") { try any.check(url, field: "hook") }
        }
        try any.check("http://127.0.0.1:8000/hook", field: "hook")
        try any.check("https://[::1]:8443/hook", field: "hook")
    }

    @Test("an allow-list admits its hosts, domains and blocks only")
    func allowList() throws {
        let policy = try WebhookPolicy(allow: ["127.0.0.1", "::1", "10.0.0.0/8", "*.example.invalid", "localhost"])
        try policy.check("http://127.0.0.1/x", field: "hook")
        try policy.check("http://10.20.30.40:9000/x", field: "hook")
        try policy.check("http://localhost:1/x", field: "hook")
        #expect(throws: ServalError.self) { try policy.check("http://11.0.0.1/x", field: "hook") }
        #expect(throws: ServalError.self) { try policy.check("ftp://127.0.0.1/x", field: "hook") }
        #expect(throws: ServalError.self) { try policy.check("not a url", field: "hook") }
        #expect(throws: ServalError.self) { try WebhookPolicy(allow: ["10.0.0.0/40"]) }
    }

    @Test("every address a name resolves to is checked: one refused address refuses the URL")
    func everyResolvedAddress() throws {
        let policy = try WebhookPolicy(allow: ["hooks.example.invalid", "*.corp.invalid", "10.1.0.0/16"])
        func target(_ url: String, _ addresses: [String]) throws(ServalError) -> WebhookTarget {
            try policy.target(for: url, field: "hook") { _ in addresses }
        }
        // A listed name may resolve to public addresses, and to internal ones a block covers.
        let allowed = try target("https://hooks.example.invalid/ok", ["93.184.216.34", "10.1.2.3", "2606:2800:220:1::1"])
        #expect(allowed.host == "hooks.example.invalid")
        #expect(!allowed.isAddressLiteral)
        #expect(allowed.addresses == ["93.184.216.34", "10.1.2.3", "2606:2800:220:1::1"])
        #expect(allowed.connectAddress == "93.184.216.34")
        #expect(try target("http://a.corp.invalid/", ["2606:2800:220:1::1", "10.1.9.9"]).connectAddress == "10.1.9.9", "IPv4 first")

        // An allowed name re-pointed at a refused address is refused, even when its other addresses are fine.
        for (addresses, named) in [
            (["169.254.169.254"], "169.254.169.254"), (["93.184.216.34", "169.254.169.254"], "169.254.169.254"),
            (["93.184.216.34", "127.0.0.1"], "127.0.0.1"), (["::1"], "::1"), (["10.2.0.1"], "10.2.0.1"),
            (["192.168.1.1"], "192.168.1.1"), (["172.20.0.1"], "172.20.0.1"), (["100.64.0.1"], "100.64.0.1"),
            (["fd00::1"], "fd00::1"), (["::ffff:127.0.0.1"], "127.0.0.1"), (["0.0.0.0"], "0.0.0.0"),
        ] {
            let error = #expect(throws: ServalError.self, "\(addresses)") { try target("http://hooks.example.invalid/", addresses) }
            #expect(error?.message.contains(named) == true, "\(error?.message ?? "")")
            #expect(error?.message.contains("hook") == true)
        }
        // A name that resolves to nothing, and a name not on the list, are refused too.
        #expect(throws: ServalError.self) { try target("http://hooks.example.invalid/", []) }
        #expect(throws: ServalError.self) { try target("http://other.example.invalid/", ["93.184.216.34"]) }
        // A name off the list is allowed when every address is inside a block.
        #expect(try target("http://internal.invalid/", ["10.1.0.7"]).addresses == ["10.1.0.7"])
        #expect(throws: ServalError.self) { try target("http://internal.invalid/", ["10.1.0.7", "10.2.0.7"]) }
        // The resolver is not asked about address literals.
        #expect(try target("http://10.1.3.4:8000/", ["169.254.169.254"]).isAddressLiteral)
        // With any host allowed, internal addresses are fine; the always-refused ones are not.
        #expect(try WebhookPolicy.anyHost.target(for: "http://box.invalid/", field: "hook") { _ in ["127.0.0.1"] }.connectAddress == "127.0.0.1")
        #expect(throws: ServalError.self) {
            try WebhookPolicy.anyHost.target(for: "http://box.invalid/", field: "hook") { _ in ["127.0.0.1", "fe80::1"] }
        }
    }
}

@Suite("WebhookAnswer")
struct WebhookAnswerTests {
    @Test("2xx delivers; a redirect fails the attempt naming its Location; anything else fails with the status")
    func answers() {
        #expect(WebhookAnswer(status: 200, location: nil).problem == nil)
        #expect(WebhookAnswer(status: 204, location: "http://ignored/").problem == nil)
        for status in [301, 302, 303, 307, 308] {
            let problem = WebhookAnswer(status: status, location: "http://169.254.169.254/latest").problem
            #expect(problem?.contains("\(status)") == true)
            #expect(problem?.contains("\"http://169.254.169.254/latest\"") == true)
            #expect(problem?.contains("do not follow redirects") == true)
        }
        #expect(WebhookAnswer(status: 302, location: nil).problem?.contains("without a Location") == true)
        #expect(WebhookAnswer(status: 302, location: String(repeating: "a", count: 10_000)).problem!.count < 800)
        #expect(WebhookAnswer(status: 500, location: nil).problem == "the receiver answered 500")
        #expect(WebhookAnswer(status: 404, location: nil).problem == "the receiver answered 404")
    }
}
