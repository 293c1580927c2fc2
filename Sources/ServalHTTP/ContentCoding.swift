import Foundation
import NIOCore
import ServalArtifacts
import ServalCore

/// The HTTP content codings Serval reads and writes on Open Inference Protocol inference: `gzip` and `deflate`
/// (zlib-wrapped, as HTTP defines it and as tritonclient's `request_compression_algorithm` and
/// `response_compression_algorithm` send and expect).
enum ContentCoding: Sendable, Equatable {
    case gzip
    case deflate

    /// Responses smaller than this go uncompressed: the headers would outweigh the saving.
    static let minimumCompressedBytes = 1024

    /// The coding of a request body from its `Content-Encoding`; `nil` when absent or `identity`.
    ///
    /// - Throws: ``ServalError/Code/validationError`` for any other coding, or more than one.
    init?(contentEncoding: String?) throws(ServalError) {
        guard let contentEncoding else { return nil }
        switch contentEncoding.trimmingCharacters(in: .whitespaces).lowercased() {
        case "", "identity": return nil
        case "gzip", "x-gzip": self = .gzip
        case "deflate": self = .deflate
        default:
            throw .invalid(
                "Content-Encoding", "\"\(contentEncoding)\" is not supported; send the body as is, or compressed with gzip or deflate.")
        }
    }

    /// The coding to answer with for an `Accept-Encoding` header: gzip when it is accepted, else deflate, else
    /// none. Codings with `q=0` are refused ones.
    static func preferred(acceptEncoding: String?) -> ContentCoding? {
        guard let acceptEncoding else { return nil }
        var deflateAccepted = false
        for item in acceptEncoding.split(separator: ",") {
            let parts = item.split(separator: ";")
            guard let name = parts.first?.trimmingCharacters(in: .whitespaces).lowercased() else { continue }
            let refused = parts.dropFirst().contains { parameter in
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                return pair.count == 2 && pair[0].lowercased() == "q" && (Double(pair[1]) ?? 1) == 0
            }
            guard !refused else { continue }
            if name == "gzip" || name == "x-gzip" { return .gzip }
            if name == "deflate" { deflateAccepted = true }
        }
        return deflateAccepted ? .deflate : nil
    }

    /// The header value.
    var name: String { self == .gzip ? "gzip" : "deflate" }

    private var format: DeflateFormat { self == .gzip ? .gzip : .zlib }

    /// A decoder for a request body in this coding that refuses to decompress to more than `maxBytes`.
    func decoder(maxBytes: Int) throws(ServalError) -> GzipDecoder {
        do {
            return try GzipDecoder(format: format, maxOutputBytes: maxBytes)
        } catch {
            throw ServalError(.internalFailure, "Serval could not start decompressing the request body: \(error).")
        }
    }

    /// The ``ServalError`` for a ``PackageError`` a request body's decoder threw.
    func requestError(_ error: PackageError, limit: Int) -> ServalError {
        switch error {
        case .tooLarge:
            ServalError(
                .payloadTooLarge,
                "The request body (Content-Encoding: \(name)) decompresses to more than \(limit) bytes, the limit; send fewer rows per request.")
        default:
            ServalError(.validationError, "The request body is not valid \(name) data, as its Content-Encoding says: \(error).")
        }
    }

    /// `body` compressed in this coding.
    func encode(_ body: ByteBuffer) -> ByteBuffer {
        DeflateEncoder.encode(body, format: format)
    }
}
