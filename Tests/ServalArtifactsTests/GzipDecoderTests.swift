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
}
