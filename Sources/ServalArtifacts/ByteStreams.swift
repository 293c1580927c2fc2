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

/// Decompresses gzip data pushed to it in chunks, for callers that read their input as a stream (transform jobs'
/// gzip inputs). Concatenated gzip members are read as one stream.
public final class GzipDecoder {
    private let inflater: Inflater

    /// Creates a decoder.
    public init() throws(PackageError) {
        inflater = try Inflater()
    }

    /// Decompresses all of `chunk`, appending what it yields to `output`.
    ///
    /// - Throws: ``PackageError/invalid(_:)`` when the data is not gzip.
    public func decode(_ chunk: ByteBuffer, into output: inout ByteBuffer) throws(PackageError) {
        var input = chunk
        while input.readableBytes > 0 {
            try inflater.inflate(from: &input, to: &output, capacity: max(64 * 1024, input.readableBytes * 4))
        }
    }

    /// Checks that the data ended at the end of a gzip member.
    ///
    /// - Throws: ``PackageError/invalid(_:)`` when it was truncated.
    public func finish() throws(PackageError) {
        guard inflater.isIdle else { throw .invalid("the gzip data ends early; it is truncated") }
    }
}

/// A zlib inflate stream for gzip data; a class so that the `z_stream` never moves.
private final class Inflater {
    private var stream = z_stream()
    /// True between gzip members: nothing is pending, a new member may start.
    private(set) var isIdle = true

    init() throws(PackageError) {
        let status = inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else { throw .io("zlib could not start (status \(status))") }
    }

    deinit {
        inflateEnd(&stream)
    }

    func inflate(from input: inout ByteBuffer, to output: inout ByteBuffer, capacity: Int) throws(PackageError) {
        var status: Int32 = Z_OK
        var consumed = 0
        _ = input.withUnsafeReadableBytes { inBytes in
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { outBytes in
                stream.next_in = UnsafeMutablePointer(mutating: inBytes.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(inBytes.count)
                stream.next_out = outBytes.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(outBytes.count)
                status = CZlib.inflate(&stream, Z_NO_FLUSH)
                consumed = inBytes.count - Int(stream.avail_in)
                return outBytes.count - Int(stream.avail_out)
            }
        }
        input.moveReaderIndex(forwardBy: consumed)
        switch status {
        case Z_OK, Z_BUF_ERROR:
            isIdle = false
        case Z_STREAM_END:
            isIdle = true
            inflateReset(&stream)
        default:
            throw .invalid("the data is not valid gzip (zlib status \(status))")
        }
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
