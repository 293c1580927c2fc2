import NIOCore
import ServalS3
import Testing

@Suite struct AWSChunkedDecoderTests {
    /// An encoded body with signatures and a trailer, as botocore sends it.
    static let encoded =
        "5;chunk-signature=0123abcd\r\nhello\r\n"
        + "7;chunk-signature=4567ef01\r\n, world\r\n"
        + "0;chunk-signature=89abcdef\r\n"
        + "x-amz-checksum-crc32:AAAAAA==\r\n\r\n"

    static func decode(_ pieces: [ByteBuffer]) throws -> String {
        var decoder = AWSChunkedDecoder()
        var output = ""
        for piece in pieces {
            for chunk in try decoder.feed(piece) { output += String(buffer: chunk) }
        }
        try decoder.finish()
        #expect(decoder.isComplete || decoder.decodedBytes == Int64(output.utf8.count))
        return output
    }

    @Test func decodesAWholeBody() throws {
        #expect(try Self.decode([ByteBuffer(string: Self.encoded)]) == "hello, world")
    }

    @Test func decodesOneByteAtATime() throws {
        let bytes = Array(Self.encoded.utf8)
        #expect(try Self.decode(bytes.map { ByteBuffer(bytes: [$0]) }) == "hello, world")
    }

    @Test func decodesRandomSplits() throws {
        let bytes = Array(Self.encoded.utf8)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var pieces: [ByteBuffer] = []
            var index = 0
            while index < bytes.count {
                let length = Int.random(in: 1...9, using: &generator)
                pieces.append(ByteBuffer(bytes: bytes[index..<min(bytes.count, index + length)]))
                index += length
            }
            #expect(try Self.decode(pieces) == "hello, world")
        }
    }

    @Test func acceptsUnsignedChunksAndAMissingFinalLine() throws {
        #expect(try Self.decode([ByteBuffer(string: "A\r\n0123456789\r\n0\r\n\r\n")]) == "0123456789")
        #expect(try Self.decode([ByteBuffer(string: "3\r\nabc\r\n0\r\n")]) == "abc")
    }

    @Test func refusesBrokenFraming() {
        for body in ["z\r\nabc\r\n0\r\n\r\n", "3\r\nabcd\r\n0\r\n\r\n", "3\nabc\r\n0\r\n\r\n", ";x\r\n", "0\r\n\r\nmore"] {
            #expect(throws: AWSChunkedDecoder.DecodingError.self, "\(body)") {
                _ = try Self.decode([ByteBuffer(string: body)])
            }
        }
    }

    @Test func refusesATruncatedBody() {
        for body in ["5\r\nhel", "5\r\nhello\r\n", "5\r\nhello\r\n0;sig"] {
            #expect(throws: AWSChunkedDecoder.DecodingError.truncated, "\(body)") {
                _ = try Self.decode([ByteBuffer(string: body)])
            }
        }
    }

    @Test func decodesAsAStream() async throws {
        let pieces = Array(Self.encoded.utf8).map { ByteBuffer(bytes: [$0]) }
        var output = ""
        for try await chunk in AWSChunkedBody(Pieces(pieces: pieces)) { output += String(buffer: chunk) }
        #expect(output == "hello, world")
    }
}

struct Pieces: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    var pieces: [ByteBuffer]

    struct AsyncIterator: AsyncIteratorProtocol {
        var pieces: [ByteBuffer]
        mutating func next() async throws -> ByteBuffer? { pieces.isEmpty ? nil : pieces.removeFirst() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(pieces: pieces) }
}
