import Foundation
import NIOCore
import ServalArtifacts
import Testing

@Suite("GzipDecoder")
struct GzipDecoderTests {
    /// `gzip -c` of "hello\n" and of "world\n", concatenated (two members).
    static let members: [UInt8] = [
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0xe7, 0x02, 0x00,
        0x20, 0x30, 0x3a, 0x36, 0x06, 0x00, 0x00, 0x00,
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x2b, 0xcf, 0x2f, 0xca, 0x49, 0xe1, 0x02, 0x00,
        0xa8, 0x61, 0x38, 0xdd, 0x06, 0x00, 0x00, 0x00,
    ]

    func decode(_ bytes: [UInt8], chunk: Int) throws -> String {
        let decoder = try GzipDecoder()
        var output = ByteBuffer()
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            try decoder.decode(ByteBuffer(bytes: bytes[offset..<end]), into: &output)
            offset = end
        }
        try decoder.finish()
        return String(buffer: output)
    }

    @Test("decodes concatenated members fed whole or a byte at a time")
    func members() throws {
        for chunk in [1, 3, 1000] {
            #expect(try decode(Self.members, chunk: chunk) == "hello\nworld\n")
        }
    }

    @Test("truncated or foreign data is an error")
    func errors() throws {
        #expect(throws: PackageError.self) { try decode(Array(Self.members.prefix(20)), chunk: 5) }
        #expect(throws: PackageError.self) { try decode(Array("plain text".utf8), chunk: 4) }
    }

    /// Bytes that do not compress well, so that sizes in the tests are not trivial.
    static func sample(count: Int) -> ByteBuffer {
        var generator = UInt64(0x9E37_79B9_7F4A_7C15)
        var buffer = ByteBuffer()
        for index in 0..<count {
            generator = generator &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            buffer.writeInteger(index % 3 == 0 ? UInt8(truncatingIfNeeded: generator >> 56) : UInt8(ascii: "a"))
        }
        return buffer
    }

    @Test("what DeflateEncoder writes, GzipDecoder reads back, in both formats, fed whole or in small chunks")
    func roundTrip() throws {
        for format in [DeflateFormat.gzip, .zlib] {
            for count in [0, 1, 1000, 300_000] {
                let plain = Self.sample(count: count)
                let compressed = DeflateEncoder.encode(plain, format: format)
                #expect(compressed.getInteger(at: 0, as: UInt8.self) == (format == .gzip ? 0x1f : 0x78))
                for chunk in [7, 100_000] {
                    let decoder = try GzipDecoder(format: format)
                    var output = ByteBuffer()
                    var input = compressed
                    while let slice = input.readSlice(length: min(chunk, input.readableBytes)), slice.readableBytes > 0 {
                        try decoder.decode(slice, into: &output)
                    }
                    try decoder.finish()
                    #expect(output == plain, "\(format) \(count) bytes in chunks of \(chunk)")
                }
            }
        }
    }

    @Test("the formats are not interchangeable: zlib data is not gzip")
    func formatsDiffer() throws {
        let zlib = DeflateEncoder.encode(Self.sample(count: 100), format: .zlib)
        var output = ByteBuffer()
        #expect(throws: PackageError.self) { try GzipDecoder(format: .gzip).decode(zlib, into: &output) }
    }

    @Test("a bomb stops at maxOutputBytes, having written at most 64 KiB beyond it")
    func bomb() throws {
        let zeros = ByteBuffer(repeating: 0, count: 20 << 20)
        let bomb = DeflateEncoder.encode(zeros, format: .gzip)
        #expect(bomb.readableBytes < 100_000)
        let decoder = try GzipDecoder(format: .gzip, maxOutputBytes: 1 << 20)
        var output = ByteBuffer()
        #expect(throws: PackageError.tooLarge("the gzip data decompresses to more than 1048576 bytes")) {
            try decoder.decode(bomb, into: &output)
        }
        #expect(output.readableBytes <= (1 << 20) + 64 * 1024)
        // Exactly the limit is fine.
        let exact = try GzipDecoder(format: .gzip, maxOutputBytes: 20 << 20)
        var all = ByteBuffer()
        try exact.decode(bomb, into: &all)
        try exact.finish()
        #expect(all.readableBytes == 20 << 20)
    }
}
