import GRPCCore
import NIOCore
import NIOHPACK
import NIOHTTP2
import ServalCore

/// Reads the 5-byte length prefixes of the gRPC messages in a request stream (a compression flag, then a
/// big-endian `UInt32` length) and skips their bodies, so a message's declared size is known before any of it is
/// buffered. A value type without I/O: feed it the DATA frames' bytes in order, in any chunking.
struct GRPCMessageLengthScanner: Sendable {
    /// Bytes of the current prefix read so far (0 to 4 of them; the fifth completes it).
    private var prefix: [UInt8] = []
    /// Bytes of the current message body still to skip.
    private var remainingBody = 0

    /// Takes the next bytes of the stream.
    ///
    /// - Returns: the declared length of the first message whose prefix completes in `bytes` and is above
    ///   `limit`, or `nil` when every message so far is within it.
    mutating func firstLength(above limit: Int, in bytes: ByteBuffer) -> Int? {
        var view = bytes.readableBytesView[...]
        while !view.isEmpty {
            if remainingBody > 0 {
                let skipped = min(remainingBody, view.count)
                view = view.dropFirst(skipped)
                remainingBody -= skipped
                continue
            }
            let wanted = 5 - prefix.count
            prefix.append(contentsOf: view.prefix(wanted))
            view = view.dropFirst(wanted)
            guard prefix.count == 5 else { return nil }
            let length = prefix[1...].reduce(0) { $0 << 8 | Int($1) }
            prefix.removeAll(keepingCapacity: true)
            if length > limit { return length }
            remainingBody = length
        }
        return nil
    }
}

/// Answers a request message above the limit with `RESOURCE_EXHAUSTED` and a message naming the limit, as soon as
/// its length prefix arrives: none of its body is buffered or decoded, and the connection keeps serving.
///
/// grpc-swift-nio-transport enforces its own `maxRequestPayloadSize` by resetting the stream, which clients
/// report as `CANCELLED` with no reason; this handler sits in front of it on each HTTP/2 stream (installed by
/// ``GRPCFrontend``), so the transport's limit, set to the same value, is only a backstop.
final class MessageSizeGuard: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTP2Frame.FramePayload
    typealias OutboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    private let limit: Int
    private var scanner = GRPCMessageLengthScanner()
    private var sentHeaders = false
    private var rejected = false

    init(limit: Int) {
        self.limit = limit
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !rejected else { return }
        let frame = unwrapInboundIn(data)
        if case .data(let payload) = frame, case .byteBuffer(let bytes) = payload.data,
            let length = scanner.firstLength(above: limit, in: bytes)
        {
            reject(context: context, length: length)
            return
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !rejected else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        if case .headers = unwrapOutboundIn(data) { sentHeaders = true }
        context.write(data, promise: promise)
    }

    /// Ends the call with trailers carrying the status (with the response headers when none were sent yet), then
    /// resets the stream so that the client stops sending the rest of the message.
    private func reject(context: ChannelHandlerContext, length: Int) {
        rejected = true
        let status = RPCError(
            ServalError(
                .payloadTooLarge,
                "The request message is \(length) bytes, above the limit of \(limit) bytes; send fewer rows per "
                    + "request."))
        var headers: HPACKHeaders = sentHeaders ? [:] : [":status": "200", "content-type": "application/grpc"]
        headers.add(name: "grpc-status", value: String(status.code.rawValue))
        headers.add(name: "grpc-message", value: Self.percentEncoded(status.message))
        context.write(wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: nil)
        // NO_ERROR, as gRPC servers do after trailers: clients then report the trailers' status, where the
        // CANCEL that closing the stream would send makes them report CANCELLED.
        context.writeAndFlush(wrapOutboundOut(.rstStream(.noError)), promise: nil)
        context.close(promise: nil)
    }

    /// The `grpc-message` encoding: bytes outside printable ASCII, and `%`, as `%XX`.
    private static func percentEncoded(_ message: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var encoded: [UInt8] = []
        for byte in message.utf8 {
            if byte >= 0x20, byte <= 0x7E, byte != UInt8(ascii: "%") {
                encoded.append(byte)
            } else {
                encoded += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: encoded, as: UTF8.self)
    }
}
