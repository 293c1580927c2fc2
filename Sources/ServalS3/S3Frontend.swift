import Hummingbird
public import Logging
import NIOCore
import ServalHTTPGuards
public import ServalAuth
public import ServalObjects
public import ServiceLifecycle

/// The S3-compatible object API on its own port: a Hummingbird application over an ``ServalObjects/ObjectStore``,
/// run as a `Service` in Serval's `ServiceGroup`. On graceful shutdown it stops accepting and lets requests finish.
public struct S3Frontend: Service {
    private let application: Application<S3Responder>

    /// Creates the frontend.
    ///
    /// - Parameters:
    ///   - port: the port; 0 picks a free one, reported to `onListening` once bound.
    ///   - idleTimeoutSeconds: how long an idle connection stays open.
    ///   - headerTimeoutSeconds: how long a client has to send a whole request head.
    ///   - maxConnections: connections open at once; one more is answered 503 and closed.
    ///   - onListening: called with the host and the bound port.
    ///   - authenticator: checks every request's SigV4 signature; `nil` when authentication is off.
    public init(
        store: any ObjectStore, host: String, port: Int, idleTimeoutSeconds: Int = 75, headerTimeoutSeconds: Int = 10,
        maxConnections: Int = 4096, authenticator: RequestAuthenticator? = nil, logger: Logger,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) -> Void
    ) {
        application = Application(
            responder: S3Responder(store: store, authenticator: authenticator),
            server: .guardedHTTP1(
                configuration: .init(
                    additionalChannelHandlers: [ContinueHandler()], idleTimeout: .seconds(Int64(idleTimeoutSeconds))),
                limits: ConnectionLimits(
                    headerTimeout: .seconds(Int64(headerTimeoutSeconds)), maxConnections: maxConnections,
                    errorBody: { code, message in
                        var xml = S3XML.Writer()
                        xml.open("Error")
                        xml.element("Code", code)
                        xml.element("Message", message)
                        xml.close("Error")
                        return ("application/xml", String(buffer: xml.buffer))
                    })),
            configuration: .init(address: .hostname(host, port: port), serverName: "Serval"),
            onServerRunning: { channel in onListening(host, channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// Serves until graceful shutdown.
    public func run() async throws {
        try await application.run()
    }
}
