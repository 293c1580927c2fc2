import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCNIOTransportCore
import Logging
import NIOCore
import NIOPosix
import ServalCore
public import ServiceLifecycle

/// Serves ``InferenceGRPCService`` over HTTP/2 (plaintext) on its own port, as a `Service`: graceful shutdown
/// lets running calls finish.
public struct GRPCFrontend: Service {
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let host: String
    private let onListening: @Sendable (_ host: String, _ port: Int) -> Void

    /// Creates the frontend.
    ///
    /// - Parameters:
    ///   - port: the port; 0 picks a free one, reported to `onListening` once bound.
    ///   - maxRequestBytes: the largest request message accepted; a larger one is answered `RESOURCE_EXHAUSTED`
    ///     (``MessageSizeGuard``) as soon as its length prefix arrives.
    ///   - authentication: checks every call's credentials; `nil` when authentication is off.
    public init(
        host: String, port: Int, service: InferenceGRPCService, maxRequestBytes: Int,
        authentication: AuthenticationInterceptor? = nil,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) -> Void
    ) {
        let address: GRPCNIOTransportCore.SocketAddress =
            host.contains(":") ? .ipv6(host: host, port: port) : .ipv4(host: host, port: port)
        let transport = HTTP2ServerTransport.Posix(
            address: address, transportSecurity: .plaintext,
            config: .defaults {
                $0.rpc.maxRequestPayloadSize = maxRequestBytes
                $0.channelDebuggingCallbacks.onAcceptHTTP2Stream = { stream in
                    stream.eventLoop.makeCompletedFuture {
                        try stream.pipeline.syncOperations.addHandler(MessageSizeGuard(limit: maxRequestBytes), position: .first)
                    }
                }
            })
        server = GRPCServer(
            transport: transport, services: [service], interceptors: authentication.map { [$0 as any ServerInterceptor] } ?? [])
        self.host = host
        self.onListening = onListening
    }

    /// Serves until graceful shutdown, then lets running calls finish.
    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { try await server.serve() }
                let address = try await server.transport.listeningAddress
                onListening(host, address.ipv4?.port ?? address.ipv6?.port ?? 0)
            }
        } onGracefulShutdown: {
            server.beginGracefulShutdown()
        }
    }
}
