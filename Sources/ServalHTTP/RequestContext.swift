import HTTPTypes
public import Hummingbird
import Logging
import NIOCore
import Synchronization

/// Per-request data of Serval's HTTP frontend.
public struct ServalRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The id returned as `x-amzn-RequestId` and logged as `request_id`.
    public let requestID: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        requestID = RequestIDs.next()
        logger[metadataKey: "request_id"] = .string(requestID)
    }

    /// JSON bodies of the REST API are small; model packages are streamed, not decoded.
    public var maxUploadSize: Int { 1024 * 1024 }
}

/// Cheap unique request ids: a random per-process prefix and a counter.
enum RequestIDs {
    private static let prefix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
    private static let counter = Atomic<UInt64>(0)

    static func next() -> String {
        let value = counter.add(1, ordering: .relaxed).newValue
        return prefix + "-" + String(value, radix: 16)
    }
}
