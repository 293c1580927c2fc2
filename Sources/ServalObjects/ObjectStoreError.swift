public import ServalCore

/// What can go wrong in an ``ObjectStore``. The S3 frontend maps each case to an S3 error code; the rest of Serval
/// sees a ``ServalCore/ServalError`` through ``servalError``.
public enum ObjectStoreError: Error, Sendable, Equatable {
    /// The bucket does not exist.
    case noSuchBucket(String)
    /// There is no object at this location.
    case noSuchKey(ObjectLocation)
    /// There is no multipart upload with this id for this location.
    case noSuchUpload(String)
    /// A part named by a completion was never uploaded, or its ETag differs.
    case invalidPart(Int)
    /// A completion's part numbers are not strictly ascending.
    case invalidPartOrder
    /// The bucket still holds objects.
    case bucketNotEmpty(String)
    /// The requested range starts past the end of an object of this size.
    case invalidRange(size: Int64)
    /// A request value is not valid; the message says which and why.
    case invalidArgument(String)
    /// The object (or a part) is larger than allowed.
    case entityTooLarge(limit: Int64)
    /// The body ended before (or went past) the length announced for it.
    case incompleteBody(expected: Int64, received: Int64)
    /// The body's MD5 differs from the one sent with it.
    case badDigest
    /// The key cannot be stored because of another object: a key and a key under it (`a` and `a/b`) cannot both
    /// exist in a folder-backed bucket.
    case keyConflict(ObjectLocation, conflictingKey: String)
    /// A conditional write's condition (``WriteCondition``) does not hold for the object in place.
    case preconditionFailed
    /// A file-system operation failed; the message is for the log, not for clients.
    case io(String)

    /// The error as Serval's own error, with a message a user can act on.
    public var servalError: ServalError {
        switch self {
        case .noSuchBucket(let bucket):
            return .notFound("The bucket", bucket, hint: "Create it first (serval objects put creates it; or PUT /\(bucket) on the S3 API).")
        case .noSuchKey(let location):
            return .notFound("The object", location.uri)
        case .noSuchUpload(let id):
            return .notFound("The multipart upload", id, hint: "It may have been completed or aborted already.")
        case .invalidPart(let number):
            return ServalError(.validationError, "Part \(number) was not uploaded, or its ETag does not match the upload's.")
        case .invalidPartOrder:
            return ServalError(.validationError, "The parts of a multipart upload must be listed in ascending order of part number.")
        case .bucketNotEmpty(let bucket):
            return ServalError(.conflict, "The bucket \"\(bucket)\" is not empty; delete its objects first.")
        case .invalidRange(let size):
            return ServalError(.validationError, "The requested range is not satisfiable: the object is \(size) bytes long.")
        case .invalidArgument(let message):
            return ServalError(.validationError, message)
        case .entityTooLarge(let limit):
            return ServalError(.payloadTooLarge, "The object is larger than \(limit) bytes, the limit.")
        case .incompleteBody(let expected, let received):
            return ServalError(.validationError, "The body was \(received) bytes long, but \(expected) were announced.")
        case .badDigest:
            return ServalError(.validationError, "The body's MD5 does not match the Content-MD5 sent with it.")
        case .keyConflict(let location, let other):
            return ServalError(
                .conflict,
                "\(location.uri) cannot be stored: the object \"\(other)\" is in the way (a key and a key below it, like a and a/b, cannot both exist in a local bucket).")
        case .preconditionFailed:
            return ServalError(.conflict, "At least one of the preconditions you specified did not hold.")
        case .io:
            return ServalError(.internalFailure, "The object store failed to read or write a file; see the server log.")
        }
    }
}
