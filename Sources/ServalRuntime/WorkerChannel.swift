public import Logging
public import NIOCore
import NIOPosix
public import ServalWorkerIPC

/// Serval's end of a worker's socket: frames decoded by ``WorkerFrameDecoder`` into an `AsyncStream`, and encoded
/// frames written out.
public final class WorkerChannel: Sendable {
    /// Frames from the worker; finishes when the channel closes or the worker breaks the protocol.
    public let frames: AsyncStream<WorkerFrame>
    private let channel: any Channel

    private init(channel: any Channel, frames: AsyncStream<WorkerFrame>) {
        self.channel = channel
        self.frames = frames
    }

    /// Takes over the connected stream socket `descriptor` (it is closed with the channel).
    ///
    /// - Throws: what NIO throws when the descriptor cannot be registered; the descriptor is then still the caller's.
    public static func connect(
        socket descriptor: CInt, group: any EventLoopGroup, logger: Logger
    ) async throws -> WorkerChannel {
        let (frames, continuation) = AsyncStream<WorkerFrame>.makeStream()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(WorkerFrameDecoder()),
                        FrameForwarder(continuation: continuation, logger: logger))
                }
            }
            .withConnectedSocket(descriptor)
            .get()
        return WorkerChannel(channel: channel, frames: frames)
    }

    /// Sends an encoded frame. Failures surface as the channel closing, which ends ``frames``.
    public func send(_ buffer: ByteBuffer) {
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// Closes the channel, without waiting.
    public func close() {
        channel.close(promise: nil)
    }

    /// Closes the channel and waits until it is closed.
    public func closeAndWait() async {
        try? await channel.close()
    }
}

/// Passes decoded frames into an `AsyncStream`, finishing it when the channel closes.
private final class FrameForwarder: ChannelInboundHandler, Sendable {
    typealias InboundIn = WorkerFrame

    let continuation: AsyncStream<WorkerFrame>.Continuation
    let logger: Logger

    init(continuation: AsyncStream<WorkerFrame>.Continuation, logger: Logger) {
        self.continuation = continuation
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        continuation.yield(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !(error is ChannelError) {
            logger.error("Worker protocol error; closing the worker's channel", metadata: ["error": "\(error)"])
        }
        continuation.finish()
        context.close(promise: nil)
    }
}
