import CZlib
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A source of bytes read in chunks, ending with `nil`.
protocol ByteStream {
    /// Reads the next chunk of at most `maxLength` bytes; `nil` at the end of the stream.
    mutating func next(maxLength: Int) throws(PackageError) -> ByteBuffer?
}

/// Reads a regular file's descriptor in chunks, at most `limit` bytes (its size when opened, so a file that grows
/// meanwhile cannot keep the reader going), checking `cancellation` before each read. Does not own the descriptor.
struct FileDescriptorStream: ByteStream {
    let descriptor: Int32
    private var remaining: Int64
    let cancellation: PackageCancellation

    init(descriptor: Int32, limit: Int64, cancellation: PackageCancellation) {
        self.descriptor = descriptor
        self.remaining = limit
        self.cancellation = cancellation
    }

    mutating func next(maxLength: Int) throws(PackageError) -> ByteBuffer? {
        try cancellation.check()
        let length = Int(min(Int64(maxLength), remaining))
        guard length > 0 else { return nil }
        var buffer = ByteBufferAllocator().buffer(capacity: length)
        var failure: Int32 = 0
        let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { pointer in
            var result: Int
            repeat {
                result = read(descriptor, pointer.baseAddress, length)
            } while result < 0 && errno == EINTR
            if result < 0 { failure = errno }
            return max(result, 0)
        }
        guard failure == 0 else { throw .io("reading the package failed: \(String(cString: strerror(failure)))") }
        remaining -= Int64(count)
        return count == 0 ? nil : buffer
    }
}

/// Decompresses a gzip stream read from `base`. Concatenated gzip members are read as one stream.
struct GzipStream<Base: ByteStream>: ByteStream {
    /// The compressed stream.
    private(set) var base: Base
    private let inflater: Inflater
    private var input = ByteBuffer()
    private var baseEnded = false

    init(base: Base) throws(PackageError) {
        self.base = base
        self.inflater = try Inflater()
    }

    mutating func next(maxLength: Int) throws(PackageError) -> ByteBuffer? {
        var output = ByteBufferAllocator().buffer(capacity: maxLength)
        while output.readableBytes == 0 {
            if input.readableBytes == 0 {
                if baseEnded { return nil }
                guard let chunk = try base.next(maxLength: 64 * 1024) else {
                    baseEnded = true
                    guard inflater.isIdle else {
                        throw .invalid("the gzip data ends early; the archive is truncated")
                    }
                    return nil
                }
                input = chunk
            }
            try inflater.inflate(from: &input, to: &output, capacity: maxLength)
        }
        return output
    }
}

/// The two framings of deflate data Serval reads and writes: gzip (RFC 1952) and zlib (RFC 1950, what HTTP calls
/// `Content-Encoding: deflate`).
public enum DeflateFormat: Sendable, Equatable {
    case gzip
    case zlib

    /// zlib's `windowBits` for the format: 15 for the largest window, plus 16 for a gzip wrapper.
    var windowBits: Int32 { self == .gzip ? 15 + 16 : 15 }

    /// The format's name in messages.
    var name: String { self == .gzip ? "gzip" : "deflate (zlib)" }
}

/// Decompresses gzip (or zlib) data pushed to it in chunks, for callers that read their input as a stream
/// (transform jobs' gzip inputs, compressed request bodies). Concatenated members are read as one stream. The
/// output is bounded: a decoder made with `maxOutputBytes` throws as soon as the data decompresses to more, having
/// allocated at most 64 KiB beyond it, so a small bomb cannot exhaust memory.
public final class GzipDecoder {
    private let inflater: Inflater
    private let format: DeflateFormat
    private let maxOutputBytes: Int
    /// Bytes decompressed so far.
    private var produced = 0

    /// Creates a decoder for `format` that refuses to decompress to more than `maxOutputBytes` in all.
    public init(format: DeflateFormat = .gzip, maxOutputBytes: Int = .max) throws(PackageError) {
        inflater = try Inflater(format: format)
        self.format = format
        self.maxOutputBytes = maxOutputBytes
    }

    /// Decompresses all of `chunk`, appending what it yields to `output`.
    ///
    /// - Throws: ``PackageError/invalid(_:)`` when the data is not in the decoder's format;
    ///   ``PackageError/tooLarge(_:)`` when it decompresses to more than `maxOutputBytes`.
    public func decode(_ chunk: ByteBuffer, into output: inout ByteBuffer) throws(PackageError) {
        var input = chunk
        var outputFilled = false
        // Until the input is consumed and zlib has had room to write everything it holds.
        while input.readableBytes > 0 || outputFilled {
            let remaining = maxOutputBytes - produced
            let capacity = min(max(64 * 1024, input.readableBytes * 4), remaining == .max ? .max : remaining + 1)
            let before = output.readableBytes
            outputFilled = try inflater.inflate(from: &input, to: &output, capacity: capacity)
            produced += output.readableBytes - before
            guard produced <= maxOutputBytes else {
                throw .tooLarge("the \(format.name) data decompresses to more than \(maxOutputBytes) bytes")
            }
        }
    }

    /// Checks that the data ended at the end of a member.
    ///
    /// - Throws: ``PackageError/invalid(_:)`` when it was truncated.
    public func finish() throws(PackageError) {
        guard inflater.isIdle else { throw .invalid("the \(format.name) data ends early; it is truncated") }
    }
}

/// A zlib inflate stream; a class so that the `z_stream` never moves.
private final class Inflater {
    private var stream = z_stream()
    private let format: DeflateFormat
    /// True between members: nothing is pending, a new member may start.
    private(set) var isIdle = true

    init(format: DeflateFormat = .gzip) throws(PackageError) {
        self.format = format
        let status = inflateInit2_(&stream, format.windowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw .io("zlib could not start (status \(status))") }
    }

    deinit {
        inflateEnd(&stream)
    }

    /// Inflates what it can of `input` into at most `capacity` new bytes of `output`; returns whether that room
    /// was filled, in which case zlib may hold more output for the next call.
    @discardableResult
    func inflate(from input: inout ByteBuffer, to output: inout ByteBuffer, capacity: Int) throws(PackageError) -> Bool {
        var status: Int32 = Z_OK
        var consumed = 0
        var filled = false
        _ = input.withUnsafeReadableBytes { inBytes in
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { outBytes in
                let room = min(outBytes.count, capacity)
                stream.next_in = UnsafeMutablePointer(mutating: inBytes.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(inBytes.count)
                stream.next_out = outBytes.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(room)
                status = CZlib.inflate(&stream, Z_NO_FLUSH)
                consumed = inBytes.count - Int(stream.avail_in)
                filled = stream.avail_out == 0
                return room - Int(stream.avail_out)
            }
        }
        input.moveReaderIndex(forwardBy: consumed)
        switch status {
        case Z_OK, Z_BUF_ERROR:
            isIdle = false
            return filled && status == Z_OK
        case Z_STREAM_END:
            isIdle = true
            inflateReset(&stream)
            return false
        default:
            throw .invalid("the data is not valid \(format.name) (zlib status \(status))")
        }
    }
}

/// Compresses a whole buffer in one call, for HTTP responses sent with `Content-Encoding: gzip` or `deflate`.
public enum DeflateEncoder {
    /// `bytes` compressed in `format` at zlib's fastest level: responses are compressed on the request's path,
    /// where time matters more than the last percent of size.
    public static func encode(_ bytes: ByteBuffer, format: DeflateFormat) -> ByteBuffer {
        var stream = z_stream()
        let status = deflateInit2_(
            &stream, Z_BEST_SPEED, Z_DEFLATED, format.windowBits, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
            Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "zlib could not start deflate (status \(status))")
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(bytes.readableBytes)))
        var output = ByteBuffer()
        bytes.withUnsafeReadableBytes { inBytes in
            _ = output.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { outBytes in
                stream.next_in = UnsafeMutablePointer(mutating: inBytes.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(inBytes.count)
                stream.next_out = outBytes.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(outBytes.count)
                let finished = deflate(&stream, Z_FINISH)
                precondition(finished == Z_STREAM_END, "deflate did not finish within deflateBound (status \(finished))")
                return outBytes.count - Int(stream.avail_out)
            }
        }
        return output
    }
}

/// Writes all of `bytes` to `descriptor`, retrying short writes and interruptions; returns 0, or the `errno` of
/// the write that failed.
public func writeFully(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32 {
    var offset = 0
    while offset < bytes.count {
        let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0 {
            if errno == EINTR { continue }
            return errno
        }
        offset += written
    }
    return 0
}
