import NIOCore
import ServalCore
import ServalOIP
import ServalFuzzSupport
import Testing

/// Bodies to decode whole and in pieces: (body, Inference-Header-Content-Length).
func sampleBodies() -> [(body: ByteBuffer, headerLength: Int?)] {
    let mixed = BinaryExtensionTests.mixedBody()
    let fp32 = (0..<640).map { String(Float($0) * 0.37 - 100) }.joined(separator: ",")
    return [
        (ByteBuffer(string: oneInput("FP32", shape: [32, 20], data: "[\(fp32)]")), nil),
        (ByteBuffer(string: oneInput("BYTES", shape: [2], data: #"["h\u00e9llo", "\ud83d\ude00"]"#)), nil),
        (
            ByteBuffer(
                string:
                    #"{"id":"z","outputs":[{"name":"o","parameters":{"binary_data":true}}],"inputs":[{"data":[[1,2],[3,4]],"datatype":"UINT16","name":"u","shape":[2,2]}]}"#
            ), nil
        ),
        (mixed.body, mixed.headerLength),
        {
            let json = oneInput("INT8", shape: [1], data: "[-3]")
            return (ByteBuffer(string: json), json.utf8.count)
        }(),
    ]
}

/// Bodies that must fail, whole or in pieces.
func badBodies() -> [(body: ByteBuffer, headerLength: Int?)] {
    let mixed = BinaryExtensionTests.mixedBody()
    var short = mixed.body
    short.moveWriterIndex(to: short.writerIndex - 3)
    var long = mixed.body
    long.writeBytes([1, 2, 3])
    return [
        (ByteBuffer(string: oneInput("UINT8", shape: [1], data: "[256]")), nil),
        (ByteBuffer(string: #"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}"#), nil),
        (short, mixed.headerLength),
        (long, mixed.headerLength),
        (mixed.body, mixed.headerLength - 5),
        (mixed.body, mixed.body.readableBytes + 1),
    ]
}

/// Feeds `body` in chunks of the given sizes (the last chunk takes the rest).
func decodeInChunks(
    _ body: ByteBuffer, headerLength: Int?, sizes: some Sequence<Int>, contentLength: Bool = true, limit: Int = 1 << 20
) throws(ServalError) -> OIPInferRequest {
    var decoder = try OIPInferBodyDecoder(
        headerLength: headerLength, contentLength: contentLength ? body.readableBytes : nil, maxBodyBytes: limit)
    var rest = body
    var sizes = sizes.makeIterator()
    while rest.readableBytes > 0 {
        let size = min(max(sizes.next() ?? rest.readableBytes, 1), rest.readableBytes)
        try decoder.feed(rest.readSlice(length: size)!)
    }
    return try decoder.finish()
}

@Suite("OIPInferBodyDecoder")
struct InferBodyDecoderTests {
    @Test("one byte at a time gives what the one-shot decoder gives, with and without Content-Length")
    func byteByByte() throws {
        for (body, headerLength) in sampleBodies() {
            let whole = try OIPCodec.decodeInferRequest(body, headerLength: headerLength)
            for contentLength in [true, false] {
                let pieces = try decodeInChunks(
                    body, headerLength: headerLength, sizes: repeatElement(1, count: .max), contentLength: contentLength
                )
                #expect(same(pieces, whole))
            }
        }
    }

    @Test("random chunkings give what the one-shot decoder gives")
    func randomChunkings() throws {
        var random = SeededGenerator(seed: 2024)
        for (body, headerLength) in sampleBodies() {
            let whole = try OIPCodec.decodeInferRequest(body, headerLength: headerLength)
            for round in 0..<40 {
                let largest = [2, 7, 64, 1_000][round % 4]
                let sizes = (0..<body.readableBytes).map { _ in Int.random(in: 1...largest, using: &random) }
                let pieces = try decodeInChunks(
                    body, headerLength: headerLength, sizes: sizes, contentLength: round % 3 != 0)
                #expect(same(pieces, whole))
            }
            #expect(same(try decodeInChunks(body, headerLength: headerLength, sizes: []), whole))
        }
    }

    @Test("bad bodies fail in pieces as they fail whole, with the same code")
    func badBodiesFail() throws {
        var random = SeededGenerator(seed: 99)
        for (body, headerLength) in badBodies() {
            var wholeError: ServalError?
            do { _ = try OIPCodec.decodeInferRequest(body, headerLength: headerLength) } catch { wholeError = error }
            let expected = try #require(wholeError)
            for round in 0..<10 {
                let sizes = (0..<body.readableBytes).map { _ in round == 0 ? 1 : Int.random(in: 1...16, using: &random)
                }
                for contentLength in [true, false] {
                    do {
                        _ = try decodeInChunks(
                            body, headerLength: headerLength, sizes: sizes, contentLength: contentLength)
                        Issue.record("decoded a bad body in pieces")
                    } catch {
                        #expect(error.code == expected.code, "\(error) vs \(expected)")
                    }
                }
            }
        }
    }

    @Test("declared sizes past the limit or Content-Length are refused before any body arrives")
    func refusedUpFront() {
        func initError(_ headerLength: Int?, _ contentLength: Int?, _ limit: Int) -> ServalError? {
            do {
                _ = try OIPInferBodyDecoder(
                    headerLength: headerLength, contentLength: contentLength, maxBodyBytes: limit)
                return nil
            } catch {
                return error
            }
        }
        #expect(initError(nil, 2_000, 1_000)?.code == .payloadTooLarge)
        #expect(initError(10, 2_000, 1_000)?.code == .payloadTooLarge)
        #expect(initError(500, 100, 1_000)?.code == .validationError)
        #expect(initError(500, 100, 1_000)?.message.contains("Inference-Header-Content-Length is 500") == true)
        #expect(initError(2_000, nil, 1_000)?.code == .payloadTooLarge)
        #expect(initError(-1, nil, 1_000)?.code == .validationError)
        #expect(initError(-1, 100, 1_000)?.code == .validationError)
        #expect(initError(100, 100, 1_000) == nil)
        #expect(initError(nil, nil, 1_000) == nil)
    }

    /// A JSON header declaring `size` bytes of binary data for one UINT8 input.
    static func header(declaring size: Int) -> String {
        #"{"inputs": [{"name": "x", "shape": [\#(size)], "datatype": "UINT8", "parameters": {"binary_data_size": \#(size)}}]}"#
    }

    @Test("a JSON header declaring more binary data than Content-Length leaves fails as soon as the header is in")
    func declaredPastContentLength() throws {
        let json = Self.header(declaring: 1_000)
        var decoder = try OIPInferBodyDecoder(
            headerLength: json.utf8.count, contentLength: json.utf8.count + 10, maxBodyBytes: 1 << 20)
        var header = ByteBuffer(string: json)
        let last = header.readSlice(length: header.readableBytes - 1)!
        try decoder.feed(last)
        do {
            try decoder.feed(header)
            Issue.record("accepted the header")
        } catch {
            #expect(error.code == .validationError)
            #expect(error.message.contains("10 bytes after the JSON header"), "\(error.message)")
            #expect(error.message.contains("add up to 1000 bytes"), "\(error.message)")
        }
        // Once failed, it stays failed.
        #expect(throws: ServalError.self) { try decoder.feed(ByteBuffer(bytes: [0])) }
        #expect(throws: ServalError.self) { try decoder.finish() }
    }

    @Test("a chunked body whose header declares more than the limit fails at the header with 413")
    func declaredPastLimit() throws {
        let json = Self.header(declaring: 5_000)
        var decoder = try OIPInferBodyDecoder(headerLength: json.utf8.count, contentLength: nil, maxBodyBytes: 4_096)
        #expect {
            try decoder.feed(ByteBuffer(string: json))
        } throws: { error in
            (error as? ServalError)?.code == .payloadTooLarge
        }
    }

    @Test("a chunked body fails as soon as it runs past its declared binary data, or past the limit")
    func chunkedOverrun() throws {
        let json = Self.header(declaring: 4)
        var decoder = try OIPInferBodyDecoder(headerLength: json.utf8.count, contentLength: nil, maxBodyBytes: 4_096)
        try decoder.feed(ByteBuffer(string: json))
        try decoder.feed(ByteBuffer(bytes: [1, 2, 3, 4]))
        #expect(throws: ServalError.self) { try decoder.feed(ByteBuffer(bytes: [5])) }

        var pureJSON = try OIPInferBodyDecoder(headerLength: nil, contentLength: nil, maxBodyBytes: 100)
        try pureJSON.feed(ByteBuffer(repeating: 0x20, count: 100))
        #expect {
            try pureJSON.feed(ByteBuffer(bytes: [0x20]))
        } throws: { error in
            (error as? ServalError)?.code == .payloadTooLarge
        }
    }

    @Test("a body shorter or longer than its Content-Length is rejected")
    func contentLengthMismatch() throws {
        let json = oneInput("INT8", shape: [1], data: "[1]")
        var short = try OIPInferBodyDecoder(headerLength: nil, contentLength: json.utf8.count + 1, maxBodyBytes: 1_000)
        try short.feed(ByteBuffer(string: json))
        #expect(throws: ServalError.self) { try short.finish() }
        var long = try OIPInferBodyDecoder(headerLength: nil, contentLength: json.utf8.count - 1, maxBodyBytes: 1_000)
        #expect(throws: ServalError.self) { try long.feed(ByteBuffer(string: json)) }
    }
}
