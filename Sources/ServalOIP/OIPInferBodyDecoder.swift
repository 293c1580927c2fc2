public import NIOCore
public import ServalCore

/// Decodes an infer request body fed chunk by chunk as it arrives, rejecting bad declared sizes as soon as it
/// can: a body larger than `maxBodyBytes` (413), a header length larger than the body or the limit, and — as soon
/// as the JSON header is complete — binary data sizes that do not add up to the rest of the body.
///
/// For any chunking it produces the same request as ``OIPCodec/decodeInferRequest(_:headerLength:)`` on the whole
/// body. After it throws, every later call throws the same error.
public struct OIPInferBodyDecoder: Sendable {
    private let headerLength: Int?
    private let contentLength: Int?
    private let maxBodyBytes: Int
    /// The bytes received so far.
    private var body = ByteBuffer()
    /// The parsed JSON header, once all of it has arrived (binary-extension bodies only).
    private var header: InferHeader?
    /// The error that ended decoding.
    private var failure: ServalError?

    /// Creates a decoder for one body. `headerLength` is the `Inference-Header-Content-Length` header's value
    /// (nil when absent: the body is pure JSON), `contentLength` the `Content-Length` (nil for a chunked body),
    /// `maxBodyBytes` the largest body accepted.
    ///
    /// - Throws: ``ServalError/Code/payloadTooLarge`` when Content-Length or the header length exceeds the limit;
    ///   ``ServalError/Code/validationError`` when the header length is negative or exceeds Content-Length.
    public init(headerLength: Int?, contentLength: Int?, maxBodyBytes: Int) throws(ServalError) {
        self.headerLength = headerLength
        self.contentLength = contentLength
        self.maxBodyBytes = maxBodyBytes
        if let contentLength, contentLength > maxBodyBytes { throw Self.tooLarge(maxBodyBytes) }
        if let headerLength {
            if let contentLength {
                try OIPCodec.checkHeaderLength(headerLength, bodyLength: contentLength)
            } else {
                try OIPCodec.checkHeaderLength(headerLength, bodyLength: .max)
                if headerLength > maxBodyBytes { throw Self.tooLarge(maxBodyBytes) }
            }
        }
    }

    private static func tooLarge(_ limit: Int) -> ServalError {
        ServalError(
            .payloadTooLarge,
            "The request body is larger than the limit of \(limit) bytes; send fewer rows per request, or raise the "
                + "server's body limit.")
    }

    /// The body's bytes received so far, as they came (no copy): after ``finish()``, the whole body.
    public var receivedBody: ByteBuffer { body }

    /// Takes the next chunk of the body.
    public mutating func feed(_ chunk: ByteBuffer) throws(ServalError) {
        do throws(ServalError) {
            try receive(chunk)
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func receive(_ chunk: ByteBuffer) throws(ServalError) {
        if let failure { throw failure }
        let received = body.readableBytes + chunk.readableBytes
        guard received <= maxBodyBytes else { throw Self.tooLarge(maxBodyBytes) }
        if let contentLength, received > contentLength {
            throw ServalError(.validationError, "The body is longer than its Content-Length of \(contentLength) bytes.")
        }
        if body.readableBytes == 0 {
            body = chunk  // no copy for a body that comes in one chunk
        } else {
            body.writeImmutableBuffer(chunk)
        }
        guard let headerLength else { return }
        if header == nil, received >= headerLength {
            guard let json = body.getSlice(at: body.readerIndex, length: headerLength) else { return }
            let parsed = try InferHeader.parse(json, hasBinarySection: true)
            header = parsed
            let declared = parsed.binaryByteCount
            guard declared <= maxBodyBytes - headerLength else { throw Self.tooLarge(maxBodyBytes) }
            if let contentLength, declared != contentLength - headerLength {
                throw InferHeader.binarySizeMismatch(declared: declared, available: contentLength - headerLength)
            }
        }
        if let header, received - headerLength > header.binaryByteCount {
            throw InferHeader.binarySizeMismatch(declared: header.binaryByteCount, available: received - headerLength)
        }
    }

    /// Ends the body and returns the decoded request.
    public mutating func finish() throws(ServalError) -> OIPInferRequest {
        do throws(ServalError) {
            if let failure { throw failure }
            if let contentLength, body.readableBytes != contentLength {
                throw ServalError(
                    .validationError,
                    "The body ended after \(body.readableBytes) of its Content-Length of \(contentLength) bytes.")
            }
            guard let header, let headerLength else {
                return try OIPCodec.decodeInferRequest(body, headerLength: headerLength)
            }
            var binary = body
            binary.moveReaderIndex(forwardBy: headerLength)
            return try header.request(binary: binary)
        } catch {
            failure = error
            throw error
        }
    }
}
