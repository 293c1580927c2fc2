import Foundation
import NIOCore
import ServalCore
import ServalRuntime
import ServalWorkerIPC

#if canImport(Glibc)
import Glibc
#endif

/// The worker's end of a fake worker's socket: plays `python/serval_worker/server.py` with a ``FakeModel``. It
/// reports READY or LOAD_FAILED once loaded, then answers one frame at a time, in order (frames that arrive while a
/// batch runs wait, as they wait in the Python worker's socket), until SHUTDOWN (exit 0), end of stream (exit 0)
/// or a frame it cannot decode (exit 2).
final class FakeWorkerHandler: ChannelInboundHandler {
    typealias InboundIn = WorkerFrame
    typealias OutboundOut = ByteBuffer

    private let model: FakeModel
    private let modelName: String
    private let process: FakeProcess
    /// Records a batch and returns its number among the model's batches.
    private let nextBatch: @Sendable (WorkerMessageType, Int, Int) -> Int
    private var busy = true  // until the model has loaded
    private var backlog: [WorkerFrame] = []

    init(
        model: FakeModel, modelName: String, process: FakeProcess,
        nextBatch: @escaping @Sendable (WorkerMessageType, Int, Int) -> Int
    ) {
        self.model = model
        self.modelName = modelName
        self.process = process
        self.nextBatch = nextBatch
    }

    func channelActive(context: ChannelHandlerContext) {
        if let gate = model.loadGate {
            let loop = context.eventLoop
            let bound = NIOLoopBound({ self.load(context) }, eventLoop: loop)
            gate.whenOpen { loop.execute { bound.value() } }
        } else {
            load(context)
        }
        context.fireChannelActive()
    }

    /// Loads the model as the script says: READY, LOAD_FAILED and exit 1, a crash, or nothing.
    private func load(_ context: ChannelHandlerContext) {
        after(model.loadDelay, context) { context in
            switch self.model.load {
            case .ready(let ready):
                var buffer = context.channel.allocator.buffer(capacity: 256)
                buffer.writeWorkerFrame(type: .ready) { $0.writeImmutableBuffer(ready.payload(pid: self.process.number)) }
                self.process.print("serval_worker: loaded fake model \(self.modelName) (batching: \(ready.batching))")
                context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
                self.next(context)
            case .fails(let message, let traceback):
                traceback.split(separator: "\n").forEach { self.process.print(String($0)) }
                let json = (try? JSONSerialization.data(withJSONObject: ["message": message, "traceback": traceback])) ?? Data()
                var buffer = context.channel.allocator.buffer(capacity: json.count + 6)
                buffer.writeWorkerFrame(type: .loadFailed) { $0.writeBytes(json) }
                let process = self.process
                context.writeAndFlush(self.wrapOutboundOut(buffer)).whenComplete { _ in process.exit(.exited(1)) }
            case .hangs:
                break
            case .crashes(let exitCode):
                self.process.print("Fatal Python error: Aborted (fake worker, while loading)")
                self.process.exit(.exited(exitCode))
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        backlog.append(unwrapInboundIn(data))
        if !busy { next(context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        process.exit(.exited(0))  // Serval is gone: the Python worker ends quietly
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        protocolError(error)
    }

    // MARK: Frames

    /// Takes the next waiting frame, if any, and answers it.
    private func next(_ context: ChannelHandlerContext) {
        busy = false
        guard !process.hasExited, !backlog.isEmpty else { return }
        busy = true
        let frame = backlog.removeFirst()
        do {
            switch frame.type {
            case .invoke:
                let (batchID, requests) = try WorkerMessages.readInvoke(frame.payload)
                run(.invoke, batchID: batchID, items: requests.count, rows: requests.count, context) { buffer in
                    let items = requests.map(self.model.answer)
                    try WorkerMessages.writeResult(WorkerBatchResult(batchID: batchID, items: items), into: &buffer)
                }
            case .infer:
                let (batchID, rows, inputs, outputs) = try WorkerMessages.readInfer(frame.payload)
                run(.infer, batchID: batchID, items: rows.count, rows: rows.reduce(0, +), context) { buffer in
                    switch self.model.infer(FakeInferBatch(rows: rows, inputs: inputs, outputs: outputs)) {
                    case .batch(let tensors):
                        try WorkerMessages.writeInferResult(batchID: batchID, batchOutputs: tensors, into: &buffer)
                    case .items(let items):
                        try WorkerMessages.writeInferResult(WorkerBatchResult(batchID: batchID, items: items), into: &buffer)
                    }
                }
            case .invokeFile:
                let (batchID, request) = try WorkerMessages.readInvokeFile(frame.payload)
                run(.invokeFile, batchID: batchID, items: 1, rows: 1, context) { buffer in
                    try WorkerMessages.writeFileResult(batchID: batchID, self.answer(file: request), into: &buffer)
                }
            case .shutdown:
                process.exit(.exited(0))
            default:
                throw WorkerProtocolError.malformed("unexpected frame type 0x\(String(frame.type.rawValue, radix: 16)) from Serval")
            }
        } catch {
            protocolError(error)
        }
    }

    /// Runs a batch as its script says, then writes what `encode` makes of it and takes the next frame.
    private func run(
        _ kind: WorkerMessageType, batchID: UInt64, items: Int, rows: Int, _ context: ChannelHandlerContext,
        encode: @escaping (inout ByteBuffer) throws -> Void
    ) {
        let number = nextBatch(kind, items, rows)
        let script = model.batches[number] ?? FakeBatchScript(delay: model.computeDelay)
        let proceed = { (context: ChannelHandlerContext) in
            self.after(script.delay, context) { context in
                switch script.outcome {
                case .answer:
                    var buffer = context.channel.allocator.buffer(capacity: 64)
                    do {
                        try encode(&buffer)
                    } catch {
                        self.protocolError(error)
                        return
                    }
                    context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
                    self.next(context)
                case .crash(let exitCode):
                    self.process.print("Fatal Python error: Segmentation fault (fake worker, batch \(number))")
                    self.process.exit(.exited(exitCode))
                case .hang:
                    break
                case .malformedAnswer:
                    var buffer = context.channel.allocator.buffer(capacity: 32)
                    try? WorkerMessages.writeResult(WorkerBatchResult(batchID: batchID, items: []), into: &buffer)
                    context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
                    self.next(context)
                case .wrongVersion:
                    var buffer = context.channel.allocator.buffer(capacity: 32)
                    buffer.writeInteger(UInt32(10), endianness: .little)
                    buffer.writeInteger(UInt8(1))
                    buffer.writeInteger(WorkerMessageType.result.rawValue)
                    buffer.writeInteger(batchID, endianness: .little)
                    context.writeAndFlush(self.wrapOutboundOut(buffer), promise: nil)
                    self.next(context)
                }
            }
        }
        guard let gate = script.gate else {
            proceed(context)
            return
        }
        let loop = context.eventLoop
        let bound = NIOLoopBound({ proceed(context) }, eventLoop: loop)
        gate.whenOpen { loop.execute { bound.value() } }
    }

    /// Runs `body` after `delay` on the channel's loop, unless the process has ended by then.
    private func after(_ delay: Duration, _ context: ChannelHandlerContext, _ body: @escaping (ChannelHandlerContext) -> Void) {
        let process = self.process
        guard delay > .zero else {
            if !process.hasExited { body(context) }
            return
        }
        let (seconds, attoseconds) = delay.components
        context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)) {
            if !process.hasExited { body(context) }
        }
    }

    /// Answers an INVOKE_FILE as the Python worker does: the input file's bytes are the body, the response body goes
    /// to the output path, and nothing is left there unless the answer is OK.
    private func answer(file request: FileInvocationRequest) -> WorkerItemResult<FileInvocationResponse> {
        guard let body = FileManager.default.contents(atPath: request.inputPath) else {
            unlink(request.outputPath)
            return .badInput(message: "the input file cannot be read: No such file or directory")
        }
        let result = model.answer(
            InvocationRequest(
                body: ByteBuffer(bytes: body), contentType: request.contentType, accept: request.accept,
                customAttributes: request.customAttributes))
        switch result {
        case .success(let response):
            guard FileManager.default.createFile(atPath: request.outputPath, contents: Data(response.body.readableBytesView)) else {
                unlink(request.outputPath)
                return .modelError(message: "the worker could not write the response: Permission denied")
            }
            return .success(FileInvocationResponse(contentType: response.contentType, bytesWritten: response.body.readableBytes))
        case .badInput(let message):
            unlink(request.outputPath)
            return .badInput(message: message)
        case .modelError(let message):
            unlink(request.outputPath)
            return .modelError(message: message)
        }
    }

    private func protocolError(_ error: any Error) {
        guard !process.hasExited else { return }
        process.print("serval_worker: protocol error: \(error)")
        process.exit(.exited(2))
    }
}
