public import HTTPTypes
import Foundation
import ServalCore
public import ServalObjects

/// An error as S3 reports it: a code clients branch on, an HTTP status and a message.
public struct S3Error: Error, Equatable, Sendable {
    /// S3's error code, e.g. `NoSuchKey`.
    public var code: String
    /// The HTTP status.
    public var status: HTTPResponse.Status
    /// A message for the user.
    public var message: String

    /// Creates an error.
    public init(_ code: String, _ status: HTTPResponse.Status, _ message: String) {
        self.code = code
        self.status = status
        self.message = message
    }

    static func invalidArgument(_ message: String) -> S3Error { S3Error("InvalidArgument", .badRequest, message) }
    static func notImplemented(_ what: String) -> S3Error {
        S3Error("NotImplemented", .init(code: 501), "\(what) is not implemented by Serval's object store; see docs/object-store.md.")
    }
    static let internalError = S3Error("InternalError", .internalServerError, "We encountered an internal error. Please try again.")

    /// The S3 error for an object store error.
    public init(_ error: ObjectStoreError) {
        let message = error.servalError.message
        switch error {
        case .noSuchBucket: self.init("NoSuchBucket", .notFound, "The specified bucket does not exist. " + message)
        case .noSuchKey: self.init("NoSuchKey", .notFound, "The specified key does not exist.")
        case .noSuchUpload: self.init("NoSuchUpload", .notFound, "The specified multipart upload does not exist. " + message)
        case .invalidPart: self.init("InvalidPart", .badRequest, message)
        case .invalidPartOrder: self.init("InvalidPartOrder", .badRequest, message)
        case .bucketNotEmpty: self.init("BucketNotEmpty", .conflict, message)
        case .invalidRange: self.init("InvalidRange", .rangeNotSatisfiable, message)
        case .invalidArgument: self.init("InvalidArgument", .badRequest, message)
        case .entityTooLarge: self.init("EntityTooLarge", .badRequest, message)
        case .incompleteBody: self.init("IncompleteBody", .badRequest, message)
        case .badDigest: self.init("BadDigest", .badRequest, message)
        case .keyConflict: self.init("KeyConflict", .conflict, message)
        case .preconditionFailed: self.init("PreconditionFailed", .preconditionFailed, message)
        case .io: self = .internalError
        }
    }

    /// The S3 error for a Serval error (from key and bucket validation).
    init(_ error: ServalError) {
        switch error.code {
        case .validationError: self.init("InvalidArgument", .badRequest, error.message)
        case .notFound: self.init("NoSuchKey", .notFound, error.message)
        case .conflict: self.init("OperationAborted", .conflict, error.message)
        case .payloadTooLarge: self.init("EntityTooLarge", .badRequest, error.message)
        default: self = .internalError
        }
    }
}
