import Foundation
import NIOCore
import ServalCore
import ServalRuntime
import ServalWorkerFake
import ServalWorkerIPC
import Testing

@Suite("VariantRuntime over fake workers: loading, batching, supervision, draining")
struct VariantRuntimeTests {
    // MARK: Loading

    @Test("a variant is starting until every instance reports READY, then ready, with the model's signature")
    func readiness() async throws {
        let gate = FakeGate()
        var model = FakeModel()
        model.loadGate = gate
        try await RunningVariant.with(model, spec: spec(instances: 2)) { variant in
            #expect(await eventually { variant.launcher.launchCount() == 2 })
            #expect(await variant.runtime.status().state == .starting)
            let early = await caught { try await variant.runtime.invoke(csv("1,2")) }
            #expect(early?.code == .modelNotReady)
            #expect(early?.retryAfterSeconds == 1)
            #expect(await variant.runtime.modelSignature() == nil)

            gate.open()
            #expect(await variant.wait(for: .ready))
            let status = await variant.runtime.status()
            #expect(status.readyInstances == 2 && status.desiredInstances == 2)
            #expect(status.queueDepth == 0 && status.inFlight == 0)
            #expect(variant.states.all == [.ready])
            #expect(
                await variant.runtime.modelSignature()
                    == ModelSignature(platform: "sklearn", inputs: FakeReady.rowSums.inputs, outputs: FakeReady.rowSums.outputs))
            #expect(variant.observer.events.filter { $0 == .modelLoaded }.count == 2)
        }
    }

    @Test("a LOAD_FAILED during the first start fails the variant with the worker's words, without retrying")
    func loadFailure() async throws {
        try await RunningVariant.with(.failsToLoad("ValueError: the pickle was made by scikit-learn 9.9")) { variant in
            let reason = try #require(await variant.failure())
            #expect(reason.hasPrefix("The model failed to load:"))
            #expect(reason.contains("ValueError: the pickle was made by scikit-learn 9.9"))
            #expect(reason.contains("Traceback (most recent call last):"))
            #expect(variant.states.all == [.failed(reason)])
            let refused = await caught { try await variant.runtime.invoke(csv("1")) }
            #expect(refused?.code == .serviceUnavailable)
            #expect(refused?.message.contains("the pickle was made by scikit-learn 9.9") == true)
            #expect(variant.launcher.launchCount() == 1)
            #expect(await eventually { variant.launcher.exits() == [1: .exited(1)] })
        }
    }

    @Test("a worker that does not load within modelLoadTimeoutSeconds is killed and the variant fails, quoting its output")
    func loadTimeout() async throws {
        var model = FakeModel()
        model.load = .hangs
        model.prints = ["downloading weights from the hub…"]
        try await RunningVariant.with(model, spec: spec(modelLoadTimeoutSeconds: 1)) { variant in
            let reason = try #require(await variant.failure())
            #expect(reason.contains("did not load the model within 1 s (modelLoadTimeoutSeconds)"))
            #expect(reason.contains("downloading weights from the hub…"))
            #expect(variant.launcher.exits() == [1: .signaled(SIGKILL)])
        }
    }

    @Test("a worker that cannot be launched fails the variant with the launcher's message")
    func launchFailure() async throws {
        var model = FakeModel()
        model.launchError = ServalError(.internalFailure, "No Python environment for this model: pip failed.")
        try await RunningVariant.with(model) { variant in
            #expect(await variant.failure() == "No Python environment for this model: pip failed.")
        }
    }

    @Test("a worker that keeps crashing while it loads is restarted with backoff, then the variant fails")
    func crashLoop() async throws {
        var model = FakeModel()
        model.load = .crashes(exitCode: 134)
        try await RunningVariant.with(model) { variant in
            let reason = try #require(await variant.failure(within: .seconds(60)))
            #expect(reason.hasPrefix("The model worker crashed 5 times in a row."))
            #expect(reason.contains("exited with status 134"))
            #expect(reason.contains("Fatal Python error: Aborted"))
            #expect(variant.launcher.launchCount() == 5)
        }
    }

    // MARK: Serving

    @Test("every item of a batch gets its own answer; a bad item fails alone")
    func eachItemItsOwnAnswer() async throws {
        try await RunningVariant.with(spec: spec(batching: batching(upTo: 6))) { variant in
            #expect(await variant.wait(for: .ready))
            let bodies = ["1,2", "10,20,30", "0.5,0.25", "x,1", "-4,4", "7\n8,1"]
            let answers = await withTaskGroup(of: (Int, Result<InvocationResponse, ServalError>).self) { group in
                for (index, body) in bodies.enumerated() {
                    group.addTask {
                        do throws(ServalError) {
                            return (index, .success(try await variant.runtime.invoke(csv(body))))
                        } catch {
                            return (index, .failure(error))
                        }
                    }
                }
                var answers: [Int: Result<InvocationResponse, ServalError>] = [:]
                for await (index, answer) in group { answers[index] = answer }
                return answers
            }
            let expected = ["3", "60", "0.75", nil, "0", "7\n9"]
            for (index, sum) in expected.enumerated() {
                switch answers[index] {
                case .success(let response)?:
                    #expect(String(buffer: response.body) == sum, "item \(index)")
                    #expect(response.contentType == "text/csv")
                case .failure(let error)?:
                    #expect(sum == nil, "item \(index): \(error)")
                    #expect(error.code == .modelError && error.modelStatusCode == 400)
                    #expect(error.message == "The model rejected the input: could not convert string to float: 'x'")
                case nil:
                    Issue.record("item \(index) has no answer")
                }
            }
            // The six requests left together, as one batch of one frame.
            #expect(variant.launcher.batches().map(\.items) == [6])
            let statistics = await variant.runtime.inferenceStatistics()
            #expect(statistics.success.count == 5 && statistics.fail.count == 1)
        }
    }

    @Test("batches group waiting requests up to maxBatchSize; statistics and observer events count them")
    func batchingUpToMax() async throws {
        let gate = FakeGate()
        var model = FakeModel()
        model.batches[1] = .hold(until: gate)
        try await RunningVariant.with(model, spec: spec(batching: batching(upTo: 4))) { variant in
            #expect(await variant.wait(for: .ready))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for value in 1...12 {
                    group.addTask {
                        let response = try await variant.runtime.invoke(csv("\(value),\(value)"))
                        #expect(String(buffer: response.body) == "\(2 * value)")
                    }
                }
                // The first batch is held in the worker; the other eight wait in the queue.
                #expect(await eventually {
                    let status = await variant.runtime.status()
                    return status.queueDepth == 8 && status.inFlight == 4 && status.readyInstances == 1
                })
                gate.open()
                try await group.waitForAll()
            }
            #expect(variant.launcher.batches().map(\.items) == [4, 4, 4])
            let statistics = await variant.runtime.inferenceStatistics()
            #expect(statistics.success.count == 12 && statistics.fail.count == 0)
            #expect(statistics.executionCount == 3 && statistics.inferenceCount == 12)
            #expect(statistics.queue.count == 12 && statistics.computeInfer.count == 12)
            #expect(statistics.lastInferenceMilliseconds > 0)
            let events = variant.observer.events
            #expect(events.filter { $0 == .batchSent(items: 4, rows: 4) }.count == 3)
            #expect(events.filter { $0 == .queued }.count == 12)
            #expect(events.filter { $0 == .batchComputed }.count == 3)
            #expect(events.filter { $0 == .modelLoaded }.count == 1)
            // The runtime does not count invocations: the inference entry does, once per path.
            #expect(!events.contains { if case .invocationEnded = $0 { true } else { false } })
            let activity = variant.runtime.activity.snapshot()
            #expect(activity.averageBatchSize == 4)
        }
    }

    @Test("tensor requests are concatenated into one INFER and each gets its own rows back")
    func tensorBatches() async throws {
        try await RunningVariant.with(spec: spec(batching: batching(upTo: 3))) { variant in
            #expect(await variant.wait(for: .ready))
            async let first = variant.runtime.infer(Self.rows([[1, 2, 3]]))
            async let second = variant.runtime.infer(Self.rows([[10, 20, 30], [0.5, 0.5, 0]]))
            let (one, two) = try await (first, second)
            #expect(one.outputs.map(\.name) == ["sum"] && one.outputs[0].shape == [1])
            #expect(Self.doubles(one.outputs[0]) == [6])
            #expect(two.outputs[0].shape == [2] && Self.doubles(two.outputs[0]) == [60, 1])
            #expect(variant.launcher.batches() == [.init(kind: .infer, model: "m", worker: 1, items: 2, rows: 3)])

            // Checked against READY's signature before it is queued: the worker never sees it.
            let wrong = await caught {
                try await variant.runtime.infer(
                    InferenceRequest(inputs: [Tensor(name: "features", datatype: .fp64, shape: [1, 1], data: ByteBuffer(bytes: [0, 0, 0, 0, 0, 0, 0, 0]))]))
            }
            #expect(wrong?.code == .validationError)
            #expect(wrong?.message.contains("no input \"features\"") == true)
            #expect(variant.launcher.batches().count == 1)
            let statistics = await variant.runtime.inferenceStatistics()
            #expect(statistics.inferenceCount == 3 && statistics.executionCount == 1)
        }
    }

    @Test("a file invocation reads its input from a file and writes the answer to a file")
    func fileInvocation() async throws {
        let folder = FileManager.default.temporaryDirectory.appending(path: "serval-runtime-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "1,2\n3,4".write(toFile: folder + "/in", atomically: true, encoding: .utf8)
        try "x".write(toFile: folder + "/bad", atomically: true, encoding: .utf8)
        try await RunningVariant.with { variant in
            #expect(await variant.wait(for: .ready))
            let response = try await variant.runtime.invoke(
                file: FileInvocationRequest(
                    inputPath: folder + "/in", outputPath: folder + "/out", contentType: "text/csv", accept: "",
                    customAttributes: ""),
                timeoutSeconds: 30)
            #expect(response == FileInvocationResponse(contentType: "text/csv", bytesWritten: 3))
            #expect(try String(contentsOfFile: folder + "/out", encoding: .utf8) == "3\n7")

            let bad = await caught {
                try await variant.runtime.invoke(
                    file: FileInvocationRequest(
                        inputPath: folder + "/bad", outputPath: folder + "/bad.out", contentType: "text/csv",
                        accept: "", customAttributes: ""))
            }
            #expect(bad?.code == .modelError && bad?.modelStatusCode == 400)
            #expect(!FileManager.default.fileExists(atPath: folder + "/bad.out"))
            #expect(variant.launcher.batches().map(\.kind) == [.invokeFile, .invokeFile])
        }
    }

    @Test("the variant's worker memory is the sum of its workers'")
    func workerMemory() async throws {
        var model = FakeModel()
        model.memoryBytes = 3_000_000
        try await RunningVariant.with(model, spec: spec(instances: 2)) { variant in
            #expect(await variant.wait(for: .ready))
            #expect(await variant.runtime.workerMemoryBytes() == 6_000_000)
        }
    }

    // MARK: Supervision

    @Test("a crash mid-batch fails that batch's requests with 503; the instance restarts and serves again")
    func crashMidBatch() async throws {
        var model = FakeModel()
        model.batches[1] = .crash(exitCode: 1)
        try await RunningVariant.with(model, spec: spec(batching: batching(upTo: 2))) { variant in
            #expect(await variant.wait(for: .ready))
            async let first = caught { try await variant.runtime.invoke(csv("1")) }
            async let second = caught { try await variant.runtime.invoke(csv("2")) }
            for failure in await [first, second] {
                #expect(failure?.code == .serviceUnavailable)
                #expect(failure?.message.contains("exited with status 1 while handling this request") == true)
                #expect(failure?.retryAfterSeconds == 1)
            }
            #expect(variant.launcher.batches().map(\.items) == [2])
            #expect(await eventually { await variant.runtime.status().readyInstances == 1 })
            async let third = variant.runtime.invoke(csv("5,5"))
            async let fourth = variant.runtime.invoke(csv("6,6"))
            let answers = try await [third, fourth]
            #expect(answers.map { String(buffer: $0.body) } == ["10", "12"])
            #expect(variant.launcher.launchCount() == 2)
            #expect(variant.launcher.exits()[1] == .exited(1))
            #expect(await variant.runtime.status().state == .ready)
            #expect(variant.states.all == [.ready])
            let statistics = await variant.runtime.inferenceStatistics()
            #expect(statistics.fail.count == 2 && statistics.success.count == 2)
        }
    }

    @Test("a batch that runs past invocationTimeoutSeconds fails with 504; the worker is killed and replaced")
    func invocationTimeout() async throws {
        var model = FakeModel()
        model.batches[1] = .hang
        try await RunningVariant.with(model, spec: spec(invocationTimeoutSeconds: 1)) { variant in
            #expect(await variant.wait(for: .ready))
            let timedOut = await caught { try await variant.runtime.invoke(csv("1")) }
            #expect(timedOut?.code == .invocationTimeout)
            #expect(timedOut?.message == "The model did not answer within 1 s (invocationTimeoutSeconds); its worker was restarted.")
            #expect(await eventually { variant.launcher.exits()[1] == .signaled(SIGKILL) })
            #expect(await eventually {
                let ready = await variant.runtime.status().readyInstances
                return variant.launcher.launchCount() == 2 && ready == 1
            })
            let answer = try await variant.runtime.invoke(csv("2,2"))
            #expect(String(buffer: answer.body) == "4")
        }
    }

    @Test("a worker that breaks the protocol is killed and replaced; its batch fails, the next request is served")
    func protocolViolations() async throws {
        var model = FakeModel()
        model.batches[1] = FakeBatchScript(outcome: .malformedAnswer)
        model.batches[2] = FakeBatchScript(outcome: .wrongVersion)
        try await RunningVariant.with(model) { variant in
            #expect(await variant.wait(for: .ready))
            let malformed = await caught { try await variant.runtime.invoke(csv("1")) }
            #expect(malformed?.code == .internalFailure)
            #expect(malformed?.message == "The model worker sent a malformed answer; Serval restarted it.")
            #expect(await eventually { variant.launcher.exits()[1] == .signaled(SIGKILL) })

            // A frame of another protocol version closes the channel: the worker sees the end of its socket and exits.
            #expect(await eventually { await variant.runtime.status().readyInstances == 1 })
            let wrongVersion = await caught { try await variant.runtime.invoke(csv("2")) }
            #expect(wrongVersion?.code == .serviceUnavailable)
            #expect(await eventually { variant.launcher.exits()[2] == .exited(0) })

            #expect(await eventually { await variant.runtime.status().readyInstances == 1 })
            let answer = try await variant.runtime.invoke(csv("3,4"))
            #expect(String(buffer: answer.body) == "7")
            #expect(variant.launcher.launchCount() == 3)
            #expect(await variant.runtime.status().state == .ready)
        }
    }

    @Test("stop() refuses new requests, lets queued and running ones finish, then asks the workers to exit")
    func stopDrains() async throws {
        let gate = FakeGate()
        var model = FakeModel()
        model.batches[1] = .hold(until: gate)
        let launcher = FakeWorkerLauncher(model)
        let runtime = VariantRuntime(spec: spec(), launcher: launcher, logger: quietLogger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await runtime.run() }
            #expect(await eventually { await runtime.status().state == .ready })
            group.addTask {
                let answer = try await runtime.invoke(csv("1,1"))
                #expect(String(buffer: answer.body) == "2")
            }
            #expect(await eventually { await runtime.status().inFlight == 1 })
            group.addTask {
                let answer = try await runtime.invoke(csv("2,2"))
                #expect(String(buffer: answer.body) == "4")
            }
            #expect(await eventually { await runtime.status().queueDepth == 1 })
            group.addTask { await runtime.stop(drainTimeout: .seconds(30), exitTimeout: .seconds(10)) }
            // Once stopping, new requests are refused. (The probe is a request that never queues: before the stop it
            // fails validation against the signature.)
            let probe = InferenceRequest(inputs: [Tensor(name: "probe", datatype: .fp64, shape: [0, 1], data: ByteBuffer())])
            #expect(await eventually { await caught { try await runtime.infer(probe) }?.code == .serviceUnavailable })
            let refused = await caught { try await runtime.invoke(csv("3")) }
            #expect(refused?.code == .serviceUnavailable)
            #expect(refused?.message == "Endpoint \"e\" is shutting down; retry against another node.")
            #expect(launcher.exits().isEmpty)
            gate.open()
            try await group.waitForAll()
        }
        #expect(await runtime.status().state == .stopped)
        #expect(launcher.exits() == [1: .exited(0)])  // it obeyed SHUTDOWN
        #expect(launcher.batches().map(\.items) == [1, 1])
    }

    // MARK: Helpers

    /// An FP64 `input-0` tensor of these rows.
    static func rows(_ rows: [[Double]]) -> InferenceRequest {
        var data = ByteBuffer()
        for value in rows.joined() { data.writeInteger(value.bitPattern, endianness: .little) }
        return InferenceRequest(
            inputs: [Tensor(name: "input-0", datatype: .fp64, shape: [rows.count, rows[0].count], data: data)])
    }

    static func doubles(_ tensor: Tensor) -> [Double] {
        var data = tensor.data
        var values: [Double] = []
        while let bits = data.readInteger(endianness: .little, as: UInt64.self) { values.append(Double(bitPattern: bits)) }
        return values
    }
}
