import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
@testable import ServalHTTPGuards
import Testing

/// The deadline's handlers in a pipeline shaped like a served connection's (bytes → deadline → HTTP codec →
/// head guard), on an embedded channel whose clock the test moves.
@Suite struct HeadDeadlineHandlerTests {
    static let timeout = TimeAmount.seconds(10)

    func makeChannel() throws -> EmbeddedChannel {
        let limits = ConnectionLimits(headerTimeout: Self.timeout) { code, message in ("text/plain", "\(code): \(message)") }
        let deadline = HeadDeadlineState(timeout: Self.timeout, limits: limits, logger: Logger(label: "test"))
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([
            HeadDeadlineHandler(deadline: deadline), HTTPResponseEncoder(),
            ByteToMessageHandler(HTTPRequestDecoder()), RequestHeadGuard(deadline: deadline, limits: limits),
        ])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    /// Everything written to the socket so far.
    func written(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let bytes) = buffer { text += String(buffer: bytes) }
        }
        return text
    }

    @Test("a next request's head that starts while the answer before it is written, and never ends, is answered 408 and closed at the deadline")
    func pipelinedHeadPastTheDeadline() throws {
        let channel = try makeChannel()
        try channel.writeInbound(ByteBuffer(string: "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(try channel.readInbound(as: HTTPServerRequestPart.self).map { if case .head = $0 { true } else { false } } == true)
        // The next request's first bytes arrive before the first one's answer has ended.
        try channel.writeInbound(ByteBuffer(string: "GET /next HTTP/1.1\r\nHo"))
        var headers = HTTPHeaders()
        headers.add(name: "content-length", value: "0")
        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        #expect(try written(channel).hasPrefix("HTTP/1.1 200 OK"))

        channel.embeddedEventLoop.advanceTime(by: Self.timeout - .seconds(1))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        let answer = try written(channel)
        #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout\r\n") && answer.hasSuffix("RequestTimeout: No whole request head arrived within 10 seconds; send the request at once."), "\(answer)")
        #expect(!channel.isActive)
    }

    @Test("a connection that sends nothing is answered 408 and closed at the deadline")
    func silentConnection() throws {
        let channel = try makeChannel()
        channel.embeddedEventLoop.advanceTime(by: Self.timeout)
        #expect(try written(channel).hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
        #expect(!channel.isActive)
    }
}
