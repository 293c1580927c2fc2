import Crypto
import Foundation
public import NIOCore
public import ServalAuth

/// Decodes S3's `aws-chunked` content encoding, which clients use for streaming (signed or checksummed) uploads:
///
/// ```
/// <hex size>[;chunk-signature=<sig>]\r\n<size bytes>\r\n ... 0[;chunk-signature=<sig>]\r\n[<trailer>\r\n]*\r\n
/// ```
///
/// A pure state machine: feed it the body's bytes in pieces of any size and it returns the decoded bytes as slices
/// of the input (no copies), or, with ``feedPieces(_:)``, also each chunk's size line, whose `chunk-signature`
/// ``AWSChunkedBody`` checks with a ``ServalAuth/SigV4ChunkVerifier``. Trailing checksums are not verified.
public struct AWSChunkedDecoder: Sendable {
    /// Why a body is not valid `aws-chunked`.
    public enum DecodingError: Error, Equatable, Sendable {
        /// The framing is wrong; the message says where.
        case malformed(String)
        /// The body ended before the final chunk and its trailer.
        case truncated
    }

    private enum State: Sendable, Equatable {
        /// Reading `<hex size>[;extension]\r\n`.
        case sizeLine(size: UInt64, digits: Int, inExtension: Bool, extensionBytes: Int, sawCR: Bool)
        /// Reading a chunk's bytes.
        case data(remaining: UInt64)
        /// Reading the `\r\n` after a chunk's bytes.
        case dataEnd(sawCR: Bool)
        /// After the final (empty) chunk: trailer lines up to an empty line.
        case trailers(lineBytes: Int, totalBytes: Int, sawCR: Bool)
        case done
    }

    /// What the decoder found in a piece of the body: a chunk's size line, or decoded bytes.
    public enum Piece: Sendable, Equatable {
        /// A chunk starts: its size and its extension after `;` (e.g. `chunk-signature=…`), `""` when none. The
        /// final chunk has size 0.
        case chunk(size: UInt64, parameters: String)
        /// Decoded bytes, a slice of the input.
        case data(ByteBuffer)
    }

    private var state = State.sizeLine(size: 0, digits: 0, inExtension: false, extensionBytes: 0, sawCR: false)
    /// The extension bytes of the size line being read.
    private var extensionText: [UInt8] = []
    /// The number of decoded bytes returned so far.
    public private(set) var decodedBytes: Int64 = 0

    /// The longest chunk-size line extension and trailer section accepted.
    static let maxExtensionBytes = 4096
    static let maxTrailerBytes = 16 << 10

    /// Creates a decoder at the start of a body.
    public init() {}

    /// Whether the final chunk and its trailer have been read.
    public var isComplete: Bool { state == .done }

    /// Decodes the next piece of the body; returns the decoded bytes it held, as slices of `input`.
    public mutating func feed(_ input: ByteBuffer) throws(DecodingError) -> [ByteBuffer] {
        try feedPieces(input).compactMap { piece in
            if case .data(let bytes) = piece { bytes } else { nil }
        }
    }

    /// Decodes the next piece of the body; returns the size lines and decoded bytes it held, in order.
    public mutating func feedPieces(_ input: ByteBuffer) throws(DecodingError) -> [Piece] {
        var output: [Piece] = []
        var index = input.readerIndex
        let end = input.writerIndex
        while index < end {
            if case .data(let remaining) = state {
                let count = Int(min(remaining, UInt64(end - index)))
                output.append(.data(input.getSlice(at: index, length: count)!))
                index += count
                decodedBytes += Int64(count)
                state = remaining == UInt64(count) ? .dataEnd(sawCR: false) : .data(remaining: remaining - UInt64(count))
                continue
            }
            try consume(input.getInteger(at: index, as: UInt8.self)!, into: &output)
            index += 1
        }
        return output
    }

    /// Checks that the body ended where it may: after the final chunk (a missing last empty line is tolerated).
    public func finish() throws(DecodingError) {
        switch state {
        case .done, .trailers(lineBytes: 0, totalBytes: _, sawCR: false): return
        default: throw .truncated
        }
    }

    private mutating func consume(_ byte: UInt8, into output: inout [Piece]) throws(DecodingError) {
        let cr: UInt8 = 0x0D
        let lf: UInt8 = 0x0A
        switch state {
        case .sizeLine(var size, var digits, var inExtension, var extensionBytes, let sawCR):
            if sawCR {
                guard byte == lf else { throw .malformed("a chunk-size line must end with CRLF") }
                guard digits > 0 else { throw .malformed("a chunk-size line has no size") }
                output.append(.chunk(size: size, parameters: String(decoding: extensionText, as: UTF8.self)))
                extensionText.removeAll(keepingCapacity: true)
                state = size == 0 ? .trailers(lineBytes: 0, totalBytes: 0, sawCR: false) : .data(remaining: size)
                return
            }
            if byte == cr {
                state = .sizeLine(size: size, digits: digits, inExtension: inExtension, extensionBytes: extensionBytes, sawCR: true)
                return
            }
            if inExtension {
                extensionBytes += 1
                guard extensionBytes <= Self.maxExtensionBytes else { throw .malformed("a chunk extension is too long") }
                extensionText.append(byte)
            } else if byte == UInt8(ascii: ";"), digits > 0 {
                inExtension = true
            } else if let value = Self.hexValue(byte) {
                digits += 1
                guard digits <= 15 else { throw .malformed("a chunk size is too large") }
                size = size << 4 | UInt64(value)
            } else {
                throw .malformed("a chunk size must be hexadecimal")
            }
            state = .sizeLine(size: size, digits: digits, inExtension: inExtension, extensionBytes: extensionBytes, sawCR: false)
        case .data:
            preconditionFailure("data is consumed in slices")
        case .dataEnd(let sawCR):
            if !sawCR, byte == cr {
                state = .dataEnd(sawCR: true)
            } else if sawCR, byte == lf {
                state = .sizeLine(size: 0, digits: 0, inExtension: false, extensionBytes: 0, sawCR: false)
            } else {
                throw .malformed("a chunk's data must be followed by CRLF")
            }
        case .trailers(let lineBytes, let totalBytes, let sawCR):
            if sawCR {
                guard byte == lf else { throw .malformed("a trailer line must end with CRLF") }
                state = lineBytes == 0 ? .done : .trailers(lineBytes: 0, totalBytes: totalBytes, sawCR: false)
            } else if byte == cr {
                state = .trailers(lineBytes: lineBytes, totalBytes: totalBytes, sawCR: true)
            } else {
                guard totalBytes < Self.maxTrailerBytes else { throw .malformed("the trailer is too long") }
                state = .trailers(lineBytes: lineBytes + 1, totalBytes: totalBytes + 1, sawCR: false)
            }
        case .done:
            throw .malformed("bytes follow the final chunk")
        }
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// A request body in `aws-chunked` encoding, decoded as it streams.
public struct AWSChunkedBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    public typealias Element = ByteBuffer

    let base: Base
    let signatures: SigV4ChunkVerifier?

    /// Wraps an encoded body; with `signatures`, every chunk's `chunk-signature` is verified, the final empty chunk
    /// included, and a chunk without one or with a wrong one fails the body with
    /// ``ServalAuth/AuthenticationFailure/signatureMismatch(_:)``. Since a chunk's signature is checked when the
    /// next size line arrives, consumers must not commit anything before the body ends without error.
    public init(_ base: Base, signatures: SigV4ChunkVerifier? = nil) {
        self.base = base
        self.signatures = signatures
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var decoder = AWSChunkedDecoder()
        var pending: [ByteBuffer] = []
        var finished = false
        var signatures: SigV4ChunkVerifier?
        /// The chunk being read: its signature and the hash of its data so far.
        var current: (signature: String, hash: SHA256)?

        public mutating func next() async throws -> ByteBuffer? {
            while pending.isEmpty {
                guard !finished else { return nil }
                guard let chunk = try await base.next() else {
                    finished = true
                    try decoder.finish()
                    if signatures != nil, current != nil { throw AuthenticationFailure.signatureMismatch(nil) }
                    return nil
                }
                for piece in try decoder.feedPieces(chunk) {
                    switch piece {
                    case .data(let bytes):
                        if current != nil { bytes.withUnsafeReadableBytes { current!.hash.update(bufferPointer: $0) } }
                        pending.append(bytes)
                    case .chunk(let size, let chunkExtension):
                        guard signatures != nil else { continue }
                        try verifyOpenChunk()
                        current = (try Self.signature(in: chunkExtension), SHA256())
                        if size == 0 { try verifyOpenChunk() }
                    }
                }
                pending.reverse()
            }
            return pending.removeLast()
        }

        private mutating func verifyOpenChunk() throws {
            guard let chunk = current, var verifier = signatures else { return }
            let digest = chunk.hash.finalize().map { String($0, radix: 16).leftPadded(to: 2) }.joined()
            try verifier.verifyChunk(sha256Hex: digest, signature: chunk.signature)
            signatures = verifier
            current = nil
        }

        /// The value of `chunk-signature=` in a size line's extension.
        private static func signature(in chunkExtension: String) throws(AuthenticationFailure) -> String {
            for parameter in chunkExtension.split(separator: ";") {
                let parts = parameter.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "chunk-signature" {
                    return parts[1].trimmingCharacters(in: .whitespaces)
                }
            }
            throw .signatureMismatch(nil)
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), signatures: signatures)
    }
}

extension String {
    /// The text with `0`s in front up to `width` characters.
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
