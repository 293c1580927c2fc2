import Foundation
import NIOCore
import ServalCore
import ServalRuntime
import ServalServices
import ServalStore
import ServalWorkerFake
import Testing

@Suite("EndpointManager over fake workers and a real store: create, update, restore, delete")
struct EndpointManagerTests {
    @Test("a new endpoint is Creating while its workers load, then InService and served")
    func create() async throws {
        let fixture = try ServicesFixture()
        try await fixture.models("m")
        try await fixture.config("c", [variant(name: "AllTraffic", modelName: "m", instanceCount: 2)])
        let gate = FakeGate()
        var model = FakeModel()
        model.loadGate = gate
        let launcher = FakeWorkerLauncher(model)
        try await fixture.running(launcher) { manager, inference in
            let created = try await manager.create(name: "e", configName: "c")
            #expect(created.status == .creating && created.configName == "c")
            #expect(await eventually { launcher.launchCount() == 2 })
            let loading = await caught { try await inference.invoke(endpoint: "e", request: csv("1,2"), targetVariant: nil) }
            #expect(loading?.code == .modelNotReady)
            #expect(try await manager.get("e").status == .creating)

            gate.open()
            let ready = try #require(try await fixture.endpoint("e") { $0.status == .inService })
            #expect(ready.failureReason == nil)
            let (response, variant) = try await inference.invoke(endpoint: "e", request: csv("1,2\n3,4"), targetVariant: nil)
            #expect(String(buffer: response.body) == "3\n7" && variant == "AllTraffic")
            let summaries = await manager.variantSummaries("e")
            #expect(summaries.map(\.currentInstanceCount) == [2] && summaries.map(\.desiredInstanceCount) == [2])
            #expect(try await manager.list().map(\.name) == ["e"])
        }
    }

    @Test("a model that cannot load makes the endpoint Failed with the worker's words")
    func createFails() async throws {
        let fixture = try ServicesFixture()
        try await fixture.models("m")
        try await fixture.config("c", [variant(name: "AllTraffic", modelName: "m")])
        let launcher = FakeWorkerLauncher(.failsToLoad("ModuleNotFoundError: No module named 'xgboost'"))
        try await fixture.running(launcher) { manager, inference in
            _ = try await manager.create(name: "e", configName: "c")
            let failed = try #require(try await fixture.endpoint("e") { $0.status == .failed })
            #expect(failed.failureReason?.contains("No module named 'xgboost'") == true)
            let refused = await caught { try await inference.invoke(endpoint: "e", request: csv("1"), targetVariant: nil) }
            #expect(refused?.code == .serviceUnavailable)
            #expect(refused?.message.contains("is Failed") == true)
        }
    }

    @Test("an update starts the new config beside the old, which serves until traffic switches; the old workers then exit")
    func update() async throws {
        let fixture = try ServicesFixture()
        try await fixture.models("m1", "m2")
        try await fixture.config("c1", [variant(name: "AllTraffic", modelName: "m1")])
        try await fixture.config("c2", [variant(name: "AllTraffic", modelName: "m2")])
        let gate = FakeGate()
        var second = FakeModel.echo(tag: "v2:")
        second.loadGate = gate
        let launcher = FakeWorkerLauncher(models: ["m1": .echo(tag: "v1:"), "m2": second])
        try await fixture.running(launcher) { manager, inference in
            _ = try await manager.create(name: "e", configName: "c1")
            #expect(try await fixture.endpoint("e") { $0.status == .inService } != nil)
            #expect(try await Self.answer(inference, "a") == "v1:a")

            let updating = try await manager.update(name: "e", configName: "c2")
            #expect(updating.status == .updating && updating.pendingConfigName == "c2")
            #expect(await eventually { launcher.launchCount(model: "m2") == 1 })
            #expect(try await Self.answer(inference, "b") == "v1:b")  // the old config serves meanwhile
            let again = await caught { try await manager.update(name: "e", configName: "c1") }
            #expect(again?.code == .validationError)

            gate.open()
            let updated = try #require(try await fixture.endpoint("e") { $0.status == .inService && $0.configName == "c2" })
            #expect(updated.pendingConfigName == nil && updated.failureReason == nil)
            #expect(try await Self.answer(inference, "c") == "v2:c")
            // The replaced worker drained and obeyed SHUTDOWN.
            #expect(await eventually { launcher.exits()[1] == .exited(0) })
            #expect(launcher.batches(model: "m1").count == 2 && launcher.batches(model: "m2").count == 1)
        }
    }

    @Test("an update whose new variant fails to load is rolled back: InService on the old config, with the reason")
    func failedUpdate() async throws {
        let fixture = try ServicesFixture()
        try await fixture.models("m1", "m2")
        try await fixture.config("c1", [variant(name: "AllTraffic", modelName: "m1")])
        try await fixture.config("c2", [variant(name: "AllTraffic", modelName: "m2")])
        let launcher = FakeWorkerLauncher(models: ["m1": .echo(tag: "v1:"), "m2": .failsToLoad("ValueError: bad weights")])
        try await fixture.running(launcher) { manager, inference in
            _ = try await manager.create(name: "e", configName: "c1")
            #expect(try await fixture.endpoint("e") { $0.status == .inService } != nil)
            _ = try await manager.update(name: "e", configName: "c2")
            let rolledBack = try #require(try await fixture.endpoint("e") { $0.status == .inService && $0.failureReason != nil })
            #expect(rolledBack.configName == "c1" && rolledBack.pendingConfigName == nil)
            #expect(rolledBack.failureReason?.hasPrefix("The update failed and was rolled back.") == true)
            #expect(rolledBack.failureReason?.contains("ValueError: bad weights") == true)
            #expect(try await Self.answer(inference, "still") == "v1:still")
            #expect(launcher.exits()[1] == nil)  // the old worker kept running
        }
    }

    @Test("a new manager on the same store brings InService endpoints back, and fails those whose model no longer loads")
    func restore() async throws {
        let fixture = try ServicesFixture()
        try await fixture.models("m1", "m2")
        try await fixture.config("c1", [variant(name: "AllTraffic", modelName: "m1")])
        try await fixture.config("c2", [variant(name: "AllTraffic", modelName: "m2")])
        let first = FakeWorkerLauncher(models: ["m1": .echo(tag: "v1:"), "m2": .echo(tag: "v2:")])
        try await fixture.running(first) { manager, _ in
            _ = try await manager.create(name: "kept", configName: "c1")
            _ = try await manager.create(name: "broken", configName: "c2")
            #expect(try await fixture.endpoint("kept") { $0.status == .inService } != nil)
            #expect(try await fixture.endpoint("broken") { $0.status == .inService } != nil)
        }
        // Serval stopped: every worker was asked to exit, and the store still says InService.
        #expect(first.exits() == [1: .exited(0), 2: .exited(0)])
        #expect(try await fixture.store.endpoint(named: "kept")?.status == .inService)

        let second = FakeWorkerLauncher(models: ["m1": .echo(tag: "v1:"), "m2": .failsToLoad("OSError: model.joblib is gone")])
        try await fixture.running(second) { manager, inference in
            #expect(await eventually { second.launchCount() == 2 })
            #expect(await eventually { (try? await manager.runtime(for: "kept")) != nil })
            #expect(await eventually { await manager.variantSummaries("kept").first?.currentInstanceCount == 1 })
            #expect(try await Self.answer(inference, "back", endpoint: "kept") == "v1:back")
            let broken = try #require(try await fixture.endpoint("broken") { $0.status == .failed })
            #expect(broken.failureReason?.contains("OSError: model.joblib is gone") == true)
        }
    }

    @Test("deleting an endpoint drains it, stops its workers and removes it")
    func delete() async throws {
        let fixture = try ServicesFixture()
        try await fixture.models("m")
        try await fixture.config("c", [variant(name: "AllTraffic", modelName: "m")])
        let launcher = FakeWorkerLauncher()
        try await fixture.running(launcher) { manager, inference in
            _ = try await manager.create(name: "e", configName: "c")
            #expect(try await fixture.endpoint("e") { $0.status == .inService } != nil)
            let deleting = try await manager.delete("e")
            #expect(deleting.status == .deleting)
            #expect(try await eventually { try await fixture.store.endpoint(named: "e") == nil })
            #expect(await eventually { launcher.exits() == [1: .exited(0)] })
            let gone = await caught { try await manager.get("e") }
            #expect(gone?.code == .notFound)
            let refused = await caught { try await inference.invoke(endpoint: "e", request: csv("1"), targetVariant: nil) }
            #expect(refused?.code == .notFound)
            // The config stays, and can serve a new endpoint of the same name.
            _ = try await manager.create(name: "e", configName: "c")
            #expect(try await fixture.endpoint("e") { $0.status == .inService } != nil)
        }
    }

    /// The body of the endpoint's answer to a CSV request.
    static func answer(_ inference: InferenceService, _ body: String, endpoint: String = "e") async throws -> String {
        String(buffer: try await inference.invoke(endpoint: endpoint, request: csv(body), targetVariant: nil).response.body)
    }
}
