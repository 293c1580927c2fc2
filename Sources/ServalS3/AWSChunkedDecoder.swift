public import NIOCore

/// Decodes S3's `aws-chunked` content encoding, which clients use for streaming (signed or checksummed) uploads:
///
/// ```
/// <hex size>[;chunk-signature=<sig>]\r\n<size bytes>\r\n ... 0[;chunk-signature=<sig>]\r\n[<trailer>\r\n]*\r\n
/// ```
///
/// A pure state machine: feed it the body's bytes in pieces of any size and it returns the decoded bytes as slices
/// of the input (no copies). Signatures and trailing checksums are not verified (authentication is issue 7).
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

    private var state = State.sizeLine(size: 0, digits: 0, inExtension: false, extensionBytes: 0, sawCR: false)
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
        var output: [ByteBuffer] = []
        var index = input.readerIndex
        let end = input.writerIndex
        while index < end {
            if case .data(let remaining) = state {
                let count = Int(min(remaining, UInt64(end - index)))
                output.append(input.getSlice(at: index, length: count)!)
                index += count
                decodedBytes += Int64(count)
                state = remaining == UInt64(count) ? .dataEnd(sawCR: false) : .data(remaining: remaining - UInt64(count))
                continue
            }
            try consume(input.getInteger(at: index, as: UInt8.self)!)
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

    private mutating func consume(_ byte: UInt8) throws(DecodingError) {
        let cr: UInt8 = 0x0D
        let lf: UInt8 = 0x0A
        switch state {
        case .sizeLine(var size, var digits, var inExtension, var extensionBytes, let sawCR):
            if sawCR {
                guard byte == lf else { throw .malformed("a chunk-size line must end with CRLF") }
                guard digits > 0 else { throw .malformed("a chunk-size line has no size") }
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

    /// Wraps an encoded body.
    public init(_ base: Base) {
        self.base = base
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var decoder = AWSChunkedDecoder()
        var pending: [ByteBuffer] = []
        var finished = false

        public mutating func next() async throws -> ByteBuffer? {
            while pending.isEmpty {
                guard !finished else { return nil }
                guard let chunk = try await base.next() else {
                    finished = true
                    try decoder.finish()
                    return nil
                }
                pending = try decoder.feed(chunk).reversed()
            }
            return pending.removeLast()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator())
    }
}
