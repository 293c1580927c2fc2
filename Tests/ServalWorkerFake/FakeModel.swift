import Foundation
public import NIOCore
public import ServalCore
public import ServalWorkerIPC
import Synchronization

/// What a fake model's workers do: how they load, how they answer each kind of batch, and what happens on chosen
/// batches (a delay, a hang, a crash, a wait for the test). Each worker speaks the real worker protocol
/// (docs/worker-protocol.md) with ServalWorkerIPC's codec, so only the model is fake.
public struct FakeModel: Sendable {
    /// How a worker's start ends.
    public enum Load: Sendable {
        /// READY with this description of the model, as the Python worker's `ready_info`.
        case ready(FakeReady)
        /// LOAD_FAILED with the Python worker's payload (`message`, `traceback`), the traceback printed, then exit
        /// status 1.
        case fails(message: String, traceback: String)
        /// Nothing: the worker never reports, as a model whose load never ends.
        case hangs
        /// The worker prints a line and exits with this status before it reports (a crash while loading).
        case crashes(exitCode: Int32)
    }

    /// How a worker's start ends; READY with ``FakeReady/rowSums`` by default.
    public var load: Load = .ready(.rowSums)
    /// Workers load once the test opens this gate, when given.
    public var loadGate: FakeGate?
    /// How long a worker takes to load before it reports (after ``loadGate``).
    public var loadDelay: Duration = .zero
    /// Thrown by the launcher instead of starting a worker (a missing Python environment, a failed spawn).
    public var launchError: ServalError?
    /// Lines each worker prints when it starts (its output tail and Serval's log get them).
    public var prints: [String] = []
    /// How long each batch takes, unless ``batches`` says otherwise.
    public var computeDelay: Duration = .zero
    /// What happens to the n-th batch (from 1) that workers of this model receive, counted across all of them (so
    /// a restarted worker does not repeat its predecessor's crash).
    public var batches: [Int: FakeBatchScript] = [:]
    /// The answer to each item of an INVOKE (and to an INVOKE_FILE's body); ``sumOfCSV`` by default.
    public var answer: @Sendable (InvocationRequest) -> WorkerItemResult<InvocationResponse> = FakeModel.sumOfCSV
    /// The answer to an INFER batch; ``rowSums`` by default.
    public var infer: @Sendable (FakeInferBatch) -> FakeInferAnswer = FakeModel.rowSums
    /// The resident memory each worker reports.
    public var memoryBytes = 0

    /// A model that loads at once, sums CSV rows and sums tensor rows.
    public init() {}

    /// A model whose workers fail to load with `message`.
    public static func failsToLoad(_ message: String) -> FakeModel {
        var model = FakeModel()
        model.load = .fails(
            message: message,
            traceback: "Traceback (most recent call last):\n  File \"model.py\", line 1, in <module>\n\(message)\n")
        return model
    }

    /// A model that echoes each body with its content type, prefixed with `tag` (to tell models apart).
    public static func echo(tag: String = "") -> FakeModel {
        var model = FakeModel()
        model.answer = { request in
            var body = ByteBuffer(string: tag)
            body.writeImmutableBuffer(request.body)
            return .success(InvocationResponse(body: body, contentType: request.contentType))
        }
        return model
    }

    /// Answers each line of a CSV body (`text/csv`) with the sum of its numbers, one line each, as `text/csv`; a
    /// value that is not a number is BAD_INPUT, worded as scikit-learn's (`could not convert string to float: 'x'`).
    public static let sumOfCSV: @Sendable (InvocationRequest) -> WorkerItemResult<InvocationResponse> = { request in
        var sums: [String] = []
        for line in String(buffer: request.body).split(whereSeparator: \.isNewline) {
            var sum = 0.0
            for field in line.split(separator: ",") {
                let text = field.trimmingCharacters(in: .whitespaces)
                guard let value = Double(text) else {
                    return .badInput(message: "could not convert string to float: '\(text)'")
                }
                sum += value
            }
            sums.append(Self.format(sum))
        }
        return .success(InvocationResponse(body: ByteBuffer(string: sums.joined(separator: "\n")), contentType: "text/csv"))
    }

    /// Answers a batch of FP64 or FP32 inputs of shape `[rows, n]` with an FP64 output `sum` of shape `[rows]`, in
    /// mode 0 (the whole batch at once) as the Python worker does; other datatypes fail each item with BAD_INPUT.
    public static let rowSums: @Sendable (FakeInferBatch) -> FakeInferAnswer = { batch in
        guard let input = batch.inputs.first, input.shape.count == 2, input.datatype == .fp64 || input.datatype == .fp32
        else {
            let message = "ValueError: the fake model takes one FP64 or FP32 input of shape [rows, n]"
            return .items(batch.rows.map { _ in .badInput(message: message) })
        }
        let (rows, width) = (input.shape[0], input.shape[1])
        var data = input.data
        var output = ByteBuffer()
        for _ in 0..<rows {
            var sum = 0.0
            for _ in 0..<width {
                if input.datatype == .fp64 {
                    sum += Double(bitPattern: data.readInteger(endianness: .little, as: UInt64.self) ?? 0)
                } else {
                    sum += Double(Float(bitPattern: data.readInteger(endianness: .little, as: UInt32.self) ?? 0))
                }
            }
            output.writeInteger(sum.bitPattern, endianness: .little)
        }
        return .batch([Tensor(name: "sum", datatype: .fp64, shape: [rows], data: output)])
    }

    /// A number as the fake writes it: an integer without a fraction, otherwise Swift's shortest form.
    public static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

/// What a fake worker reports in READY: the Python worker's `ready_info` fields.
public struct FakeReady: Sendable {
    /// The handler (`sklearn`, `custom`, …).
    public var handler: String
    /// How it batches (`stacked`, `per_item`, `predict_batch_fn`).
    public var batching: String
    /// The model's platform.
    public var platform: String
    /// The model's inputs.
    public var inputs: [TensorMetadata]
    /// The model's outputs.
    public var outputs: [TensorMetadata]
    /// The model's feature count, when it tells it.
    public var nFeatures: Int?

    /// Creates a description.
    public init(
        handler: String = "sklearn", batching: String = "stacked", platform: String = "sklearn",
        inputs: [TensorMetadata], outputs: [TensorMetadata], nFeatures: Int? = nil
    ) {
        self.handler = handler
        self.batching = batching
        self.platform = platform
        self.inputs = inputs
        self.outputs = outputs
        self.nFeatures = nFeatures
    }

    /// The signature of ``FakeModel/rowSums``: `input-0` FP64 `[-1, -1]` in, `sum` FP64 `[-1]` out.
    public static let rowSums = FakeReady(
        inputs: [TensorMetadata(name: "input-0", datatype: .fp64, shape: [-1, -1])],
        outputs: [TensorMetadata(name: "sum", datatype: .fp64, shape: [-1])])

    /// The READY payload of worker `pid`: `{"protocol": 2, "pid": …, "python": …, "handler": …, …}`.
    func payload(pid: Int) -> ByteBuffer {
        struct Payload: Encodable {
            var ready: FakeReady
            var pid: Int

            enum Keys: String, CodingKey {
                case `protocol`, pid, python, handler, batching, platform, inputs, outputs
                case nFeatures = "n_features"
            }

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Keys.self)
                try container.encode(Int(workerProtocolVersion), forKey: .protocol)
                try container.encode(pid, forKey: .pid)
                try container.encode("fake", forKey: .python)
                try container.encode(ready.handler, forKey: .handler)
                try container.encode(ready.batching, forKey: .batching)
                try container.encodeIfPresent(ready.nFeatures, forKey: .nFeatures)
                try container.encode(ready.platform, forKey: .platform)
                try container.encode(ready.inputs, forKey: .inputs)
                try container.encode(ready.outputs, forKey: .outputs)
            }
        }
        return ByteBuffer(bytes: (try? JSONEncoder().encode(Payload(ready: self, pid: pid))) ?? Data())
    }
}

/// A decoded INFER batch, as the fake model sees it.
public struct FakeInferBatch: Sendable {
    /// Each item's rows, in order.
    public var rows: [Int]
    /// The inputs, concatenated along the first dimension.
    public var inputs: [Tensor]
    /// The requested outputs; empty for all.
    public var outputs: [String]
}

/// A fake model's answer to an INFER batch.
public enum FakeInferAnswer: Sendable {
    /// Mode 0: the outputs of the whole batch, which Serval splits by the items' rows.
    case batch([Tensor])
    /// Mode 1: one result per item.
    case items([WorkerItemResult<InferenceResponse>])
}

/// What happens to one batch: wait for a gate the test opens, then a delay, then the outcome.
public struct FakeBatchScript: Sendable {
    /// How the batch ends.
    public enum Outcome: Sendable {
        /// The model answers.
        case answer
        /// The worker prints a line, closes its socket and exits with this status.
        case crash(exitCode: Int32)
        /// The worker never answers (until it is killed).
        case hang
        /// The worker answers a RESULT frame with no items, which answers no batch correctly (a protocol violation
        /// in the payload).
        case malformedAnswer
        /// The worker writes a frame of protocol version 1 (a protocol violation in the framing).
        case wrongVersion
    }

    /// Held until the test opens it.
    public var gate: FakeGate?
    /// Then this long.
    public var delay: Duration
    /// Then this.
    public var outcome: Outcome

    /// Creates a script.
    public init(gate: FakeGate? = nil, delay: Duration = .zero, outcome: Outcome = .answer) {
        self.gate = gate
        self.delay = delay
        self.outcome = outcome
    }

    /// The worker crashes with `exitCode` on this batch (once `gate` is open, when given).
    public static func crash(exitCode: Int32 = 1, after gate: FakeGate? = nil) -> FakeBatchScript {
        FakeBatchScript(gate: gate, outcome: .crash(exitCode: exitCode))
    }

    /// The worker answers once the test opens `gate`.
    public static func hold(until gate: FakeGate) -> FakeBatchScript {
        FakeBatchScript(gate: gate)
    }

    /// The worker answers after `delay`.
    public static func delay(_ delay: Duration) -> FakeBatchScript {
        FakeBatchScript(delay: delay)
    }

    /// The worker never answers.
    public static let hang = FakeBatchScript(outcome: .hang)
}

/// A latch the test opens to let a held batch go on.
public final class FakeGate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [@Sendable () -> Void])>((false, []))

    /// Creates a closed gate.
    public init() {}

    /// Opens the gate: what waits on it runs now, what comes later runs at once.
    public func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0() }
    }

    /// Runs `action` once the gate is open.
    func whenOpen(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { state in
            if state.open { return true }
            state.waiters.append(action)
            return false
        }
        if now { action() }
    }
}
