import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServalFuzzSupport
@testable import ServalS3
import ServalObjects
import Testing

/// Seeded random tests of the pure parsing of S3 requests: valid inputs built at random must parse back to what
/// made them, and mutations of them must parse or fail with the parser's own error — never crash, never hang.
/// `SERVAL_FUZZ_SECONDS` extends each run; a failure names the seed that `SERVAL_FUZZ_SEED` replays.
@Suite("S3 request parsing: fuzzing")
struct S3ParsingFuzzTests {
    /// Characters that stress the decoders: separators, escapes, XML markup, multi-byte and control characters.
    static let alphabet = Array("ab09-_.~/%&=?+ #<>&;\"'\r\n\t\u{0}é日🙂") + ["%2F", "%25", "%zz", "%", "&amp;", "]]>"].flatMap(Array.init)

    static func text(_ random: inout SeededGenerator, maxLength: Int = 24) -> String {
        String((0..<Int.random(in: 0...maxLength, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
    }

    /// `text` with random bytes flipped, inserted, removed or repeated; invalid UTF-8 is repaired by decoding.
    static func mutated(_ text: String, _ random: inout SeededGenerator) -> String {
        var bytes = Array(text.utf8)
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let position = Int.random(in: 0...bytes.count, using: &random)
            switch Int.random(in: 0..<4, using: &random) {
            case 0 where position < bytes.count: bytes[position] ^= 1 << UInt8.random(in: 0...7, using: &random)
            case 1: bytes.insert(contentsOf: Array(String(alphabet.randomElement(using: &random)!).utf8), at: position)
            case 2 where position < bytes.count: bytes.remove(at: position)
            default: bytes.insert(contentsOf: bytes[position...].prefix(8), at: position)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    @Test("request targets: encoded bucket, key and query decode back; mutated paths decode without crashing")
    func targets() {
        for seed in FuzzSeeds("S3 targets") {
            var random = SeededGenerator(seed: seed)
            let bucket = "b" + Self.text(&random).filter { $0 != "/" }
            let key = Self.text(&random)
            let name = "n" + Self.text(&random, maxLength: 8)
            let value = Self.text(&random)
            let path = "/\(Self.percentEncoded(bucket))/\(Self.percentEncoded(key))?\(Self.percentEncoded(name))=\(Self.percentEncoded(value))"
            let target = S3Responder.target(of: Self.request(path))
            #expect(target.bucket == bucket && target.key == key, "seed \(seed): \(path) gave \(target)")
            #expect(target.query == [name: value], "seed \(seed): \(path) gave \(target.query)")
            let hostile = Self.mutated(path, &random)
            _ = S3Responder.target(of: Self.request(hostile.hasPrefix("/") ? hostile : "/" + hostile))
        }
    }

    @Test("Range headers: valid ones parse and resolve inside the object; mutated ones parse or are ignored")
    func ranges() {
        for seed in FuzzSeeds("S3 ranges") {
            var random = SeededGenerator(seed: seed)
            let first = Int64.random(in: 0...Int64.max / 2, using: &random) >> Int.random(in: 0...62, using: &random)
            let last = first + (Int64.random(in: 0...Int64.max / 2, using: &random) >> Int.random(in: 0...62, using: &random))
            #expect(S3Range(header: "bytes=\(first)-\(last)") == .from(first, through: last), "seed \(seed)")
            #expect(S3Range(header: "bytes=-\(last)") == .suffix(last), "seed \(seed)")
            let size = Int64.random(in: 0...1 << 40, using: &random)
            for header in ["bytes=\(first)-\(last)", "bytes=\(first)-", "bytes=-\(last)"].map({ Self.mutated($0, &random) }) {
                if let resolved = S3Range(header: header)?.resolve(size: size) {
                    #expect(resolved.lowerBound >= 0 && resolved.upperBound < size, "seed \(seed): \(header) gave \(resolved)")
                }
                if let copy = try? S3CopySource.range(header: header) {
                    #expect(copy.lowerBound >= 0 && copy.lowerBound <= copy.upperBound, "seed \(seed): \(header)")
                }
            }
        }
    }

    @Test("aws-chunked bodies: random chunkings decode to their data in any split; mutated ones fail as DecodingError")
    func chunkedBodies() {
        for seed in FuzzSeeds("aws-chunked") {
            var random = SeededGenerator(seed: seed)
            let data = (0..<Int.random(in: 0...2000, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            var body: [UInt8] = []
            var rest = data[...]
            while !rest.isEmpty {
                let chunk = rest.prefix(Int.random(in: 1...700, using: &random))
                rest = rest.dropFirst(chunk.count)
                body += Array("\(String(chunk.count, radix: 16));chunk-signature=\(String(repeating: "0", count: 64))\r\n".utf8)
                body += chunk + Array("\r\n".utf8)
            }
            body += Array("0;chunk-signature=\(String(repeating: "0", count: 64))\r\n\r\n".utf8)
            #expect(Self.decode(body, &random) == .success(data), "seed \(seed)")

            var hostile = body
            for _ in 0..<Int.random(in: 1...4, using: &random) where !hostile.isEmpty {
                let position = Int.random(in: 0..<hostile.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: hostile[position] ^= 1 << UInt8.random(in: 0...7, using: &random)
                case 1: hostile.insert(contentsOf: Array("fffffffffffffffff\r\n".utf8.prefix(Int.random(in: 1...19, using: &random))), at: position)
                default: hostile.removeLast(hostile.count - position)
                }
            }
            if case .success(let decoded) = Self.decode(hostile, &random) {
                #expect(decoded.count <= hostile.count, "seed \(seed): \(decoded.count) bytes out of \(hostile.count)")
            }
        }
    }

    @Test("tagging and XML: random tag sets round-trip; mutated documents and headers fail with the parsers' errors")
    func taggingAndXML() {
        for seed in FuzzSeeds("S3 tagging") {
            var random = SeededGenerator(seed: seed)
            let tags = (0..<Int.random(in: 0...10, using: &random)).map { index in
                ObjectTag(key: "k\(index)" + Self.text(&random).filter(Self.tagCharacter), value: Self.text(&random).filter(Self.tagCharacter))
            }
            let document = S3Tagging.document(tags).text
            #expect((try? S3Tagging.parse(body: ByteBuffer(string: document))) == tags, "seed \(seed): \(document)")
            let header = tags.map { Self.percentEncoded($0.key) + "=" + Self.percentEncoded($0.value) }.joined(separator: "&")
            #expect((try? S3Tagging.parse(header: header)) == tags, "seed \(seed): \(header)")

            do {
                _ = try S3Tagging.parse(body: ByteBuffer(string: Self.mutated(document, &random)))
            } catch {
                #expect(error is S3XML.MalformedXML || error is S3Error, "seed \(seed): \(type(of: error)) \(error)")
            }
            do throws(S3Error) {
                _ = try S3Tagging.parse(header: Self.mutated(header, &random))
                _ = try S3CopySource(header: Self.mutated("/\(Self.percentEncoded(Self.text(&random)))/k?versionId=null", &random))
            } catch {
                #expect(error.status.code == 400 || error.status.code == 501, "seed \(seed): \(error)")
            }
        }
    }

    // MARK: Helpers

    /// The characters S3 allows in tags (letters, digits, spaces and `+ - = . _ : / @`).
    static func tagCharacter(_ character: Character) -> Bool {
        character.isLetter || character.isNumber || " +-=._:/@".contains(character)
    }

    static func request(_ path: String) -> Request {
        Request(
            head: HTTPRequest(method: .get, scheme: "http", authority: "localhost", path: path),
            body: RequestBody(buffer: ByteBuffer()))
    }

    /// Feeds `body` to a decoder in random pieces; the decoded bytes, or the decoder's error.
    static func decode(_ body: [UInt8], _ random: inout SeededGenerator) -> Result<[UInt8], AWSChunkedDecoder.DecodingError> {
        var decoder = AWSChunkedDecoder()
        var output: [UInt8] = []
        var rest = body[...]
        do throws(AWSChunkedDecoder.DecodingError) {
            while !rest.isEmpty {
                let piece = rest.prefix(Int.random(in: 1...300, using: &random))
                rest = rest.dropFirst(piece.count)
                for chunk in try decoder.feed(ByteBuffer(bytes: piece)) { output += chunk.readableBytesView }
            }
            try decoder.finish()
        } catch {
            return .failure(error)
        }
        #expect(decoder.decodedBytes == Int64(output.count))
        return .success(output)
    }
}
