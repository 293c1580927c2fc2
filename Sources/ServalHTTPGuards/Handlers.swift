import Logging
import NIOCore
import NIOHTTP1

/// One connection's ``HeadDeadline`` and its timer, shared by its two handlers on the connection's event loop.
///
/// The timer and the 408 answer always use the context of ``HeadDeadlineHandler``, first in the pipeline, whichever
/// handler reported the event: the answer is raw bytes, which must not pass through the HTTP response encoder
/// (written from ``RequestHeadGuard``'s place they would crash the server).
final class HeadDeadlineState {
    var machine = HeadDeadline()
    var timer: Scheduled<Void>?
    /// The context of ``HeadDeadlineHandler`` while it is in the pipeline.
    var context: ChannelHandlerContext?
    let timeout: TimeAmount
    let limits: ConnectionLimits
    let logger: Logger

    init(timeout: TimeAmount, limits: ConnectionLimits, logger: Logger) {
        self.timeout = timeout
        self.limits = limits
        self.logger = logger
    }

    /// Carries out `action` on the connection.
    func perform(_ action: HeadDeadline.Action) {
        guard let context else { return }
        switch action {
        case .none:
            break
        case .start:
            timer?.cancel()
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            timer = context.eventLoop.scheduleTask(in: timeout) {
                let state = loopBound.value
                state.perform(state.machine.deadlinePassed())
            }
        case .cancel:
            timer?.cancel()
            timer = nil
        case .close:
            timer = nil
            logger.info("Closing a connection that sent no whole request head in time", metadata: ["timeout": "\(timeout)"])
            let (contentType, body) = limits.errorBody(
                "RequestTimeout", "No whole request head arrived within \(timeout.nanoseconds / 1_000_000_000) seconds; send the request at once.")
            let response = GuardedHTTP1Channel.rawResponse(408, "Request Timeout", contentType, body, retryAfter: false)
            let channel = context.channel
            context.writeAndFlush(NIOAny(channel.allocator.buffer(string: response))).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }

    func cancel() {
        timer?.cancel()
        timer = nil
    }
}

/// First in the pipeline: sees every byte, so that a head trickling in starts the deadline.
final class HeadDeadlineHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    let deadline: HeadDeadlineState

    init(deadline: HeadDeadlineState) {
        self.deadline = deadline
    }

    func handlerAdded(context: ChannelHandlerContext) {
        deadline.context = context
        // A new connection's deadline runs from its start (HeadDeadline's initial state).
        deadline.perform(.start)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline.cancel()
        deadline.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deadline.perform(deadline.machine.bytesReceived())
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline.cancel()
        context.fireChannelInactive()
    }
}

/// Between NIO's HTTP/1 codec and Hummingbird's: sees each request head with its HTTP version and each response's
/// end. Stops the head deadline, answers 400 to HTTP/1.1 without `Host`, and has an HTTP/1.0 request without
/// `Connection: keep-alive` close its connection after the answer (Hummingbird closes after a request that says
/// `Connection: close`).
final class RequestHeadGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let deadline: HeadDeadlineState
    let limits: ConnectionLimits
    /// The current request was refused: its other parts are dropped.
    private var refusing = false
    /// The current request's answer must say the connection closes.
    private var closing = false

    init(deadline: HeadDeadlineState, limits: ConnectionLimits) {
        self.deadline = deadline
        self.limits = limits
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(var head):
            deadline.perform(deadline.machine.headReceived())
            if head.version == .http1_1 && !head.headers.contains(name: "host") {
                refuse(context)
                return
            }
            refusing = false
            closing = !head.isKeepAlive
            if closing { head.headers.replaceOrAdd(name: "connection", value: "close") }
            context.fireChannelRead(wrapInboundOut(.head(head)))
        case .body:
            if !refusing { context.fireChannelRead(data) }
        case .end:
            deadline.perform(deadline.machine.requestEnded())
            if !refusing { context.fireChannelRead(data) }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(var head) where closing:
            head.headers.replaceOrAdd(name: "connection", value: "close")
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case .end:
            deadline.perform(deadline.machine.responseEnded())
            context.write(data, promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }

    private func refuse(_ context: ChannelHandlerContext) {
        refusing = true
        let (contentType, body) = limits.errorBody(
            "ValidationError", "An HTTP/1.1 request must carry a Host header (RFC 9112, section 3.2); add one.")
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: "\(body.utf8.count)")
        headers.add(name: "connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .badRequest, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// First in the pipeline of a connection over the limit: answers 503 at once and closes, reading nothing.
final class RefuseConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    let response: String

    init(response: String) {
        self.response = response
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        context.writeAndFlush(NIOAny(channel.allocator.buffer(string: response))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
