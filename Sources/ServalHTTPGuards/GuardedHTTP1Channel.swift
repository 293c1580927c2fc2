public import HummingbirdCore
import Logging
public import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import Synchronization

/// Limits on the connections of one HTTP port, on by default.
public struct ConnectionLimits: Sendable {
    /// How long a client has to send a whole request head (see ``HeadDeadline``).
    public var headerTimeout: TimeAmount
    /// Connections open at once; one more is answered 503 and closed.
    public var maxConnections: Int
    /// The body of the answers these guards give themselves (503, 400), as the port's clients expect errors: JSON
    /// `{code, message}` on Serval's API, XML on S3.
    public var errorBody: @Sendable (_ code: String, _ message: String) -> (contentType: String, body: String)

    /// Creates limits.
    public init(
        headerTimeout: TimeAmount = .seconds(10), maxConnections: Int = 4096,
        errorBody: @escaping @Sendable (_ code: String, _ message: String) -> (contentType: String, body: String)
    ) {
        self.headerTimeout = headerTimeout
        self.maxConnections = maxConnections
        self.errorBody = errorBody
    }
}

extension HTTPServerBuilder {
    /// An HTTP/1.1 server whose connections are guarded: a request head must arrive within the header timeout;
    /// at most `maxConnections` are open at once (others get 503 and are closed); an HTTP/1.0 request without
    /// `Connection: keep-alive` has its connection closed after the answer; an HTTP/1.1 request without `Host` is
    /// answered 400 (RFC 9112 §3.2).
    public static func guardedHTTP1(configuration: HTTP1Channel.Configuration, limits: ConnectionLimits) -> HTTPServerBuilder {
        let open = OpenConnections()
        return HTTPServerBuilder { responder in
            GuardedHTTP1Channel(
                inner: HTTP1Channel(responder: responder, configuration: configuration), limits: limits, open: open)
        }
    }
}

/// The number of connections a port has open.
final class OpenConnections: Sendable {
    let count = Atomic<Int>(0)
}

/// Hummingbird's HTTP/1 child channel with ``HeadDeadlineHandler``, ``RequestHeadGuard`` and the connection count.
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let inner: HTTP1Channel
    let limits: ConnectionLimits
    let open: OpenConnections

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let count = open.count.add(1, ordering: .relaxed).newValue
        let open = self.open
        channel.closeFuture.whenComplete { _ in open.count.subtract(1, ordering: .relaxed) }
        return inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            let operations = channel.pipeline.syncOperations
            if count > limits.maxConnections {
                logger.notice("Connection refused: too many open", metadata: ["open": "\(count - 1)", "limit": "\(limits.maxConnections)"])
                let (contentType, body) = limits.errorBody(
                    "TooManyConnections",
                    "The server has \(limits.maxConnections) connections open, its limit; retry shortly, or reuse a connection.")
                try operations.addHandler(RefuseConnectionHandler(response: Self.rawResponse(503, "Service Unavailable", contentType, body, retryAfter: true)), position: .first)
                return value
            }
            let deadline = HeadDeadlineState(timeout: limits.headerTimeout, limits: limits, logger: logger)
            try operations.addHandler(HeadDeadlineHandler(deadline: deadline), position: .first)
            let codec = try operations.handler(type: HTTP1ToHTTPServerCodec.self)
            try operations.addHandler(RequestHeadGuard(deadline: deadline, limits: limits), position: .before(codec))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }

    static func rawResponse(_ status: Int, _ reason: String, _ contentType: String, _ body: String, retryAfter: Bool) -> String {
        "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n"
            + (retryAfter ? "Retry-After: 1\r\n" : "") + "Connection: close\r\n\r\n" + body
    }
}
