import NIOCore
import ServalCore
import ServalWorkerIPC
import Testing

/// The fields of an ``InvocationRequest``, comparable.
struct RequestFields: Equatable, CustomStringConvertible {
    var contentType: String
    var accept: String
    var customAttributes: String
    var body: [UInt8]

    init(contentType: String = "", accept: String = "", customAttributes: String = "", body: [UInt8] = []) {
        self.contentType = contentType
        self.accept = accept
        self.customAttributes = customAttributes
        self.body = body
    }

    init(_ request: InvocationRequest) {
        self.init(
            contentType: request.contentType, accept: request.accept, customAttributes: request.customAttributes,
            body: Array(request.body.readableBytesView))
    }

    var request: InvocationRequest {
        InvocationRequest(
            body: ByteBuffer(bytes: body), contentType: contentType, accept: accept, customAttributes: customAttributes)
    }

    var description: String { "(\(contentType), \(accept), \(customAttributes), \(body.count) bytes)" }
}

/// Decodes the one frame `buffer` holds, byte by byte, and checks its type.
func onlyFrame(
    _ buffer: ByteBuffer, type: WorkerMessageType, sourceLocation: SourceLocation = #_sourceLocation
) throws -> WorkerFrame {
    let frames = try decodeByteByByte(Array(buffer.readableBytesView))
    try #require(frames.count == 1, sourceLocation: sourceLocation)
    #expect(frames[0].type == type, sourceLocation: sourceLocation)
    return frames[0]
}

/// Writes an INVOKE, decodes its frame and reads it back.
func invokeRoundTrip(batchID: UInt64, _ requests: [RequestFields]) throws -> (batchID: UInt64, requests: [RequestFields]) {
    var buffer = ByteBuffer()
    try WorkerMessages.writeInvoke(batchID: batchID, requests: requests.map(\.request), into: &buffer)
    let decoded = try WorkerMessages.readInvoke(try onlyFrame(buffer, type: .invoke).payload)
    return (decoded.batchID, decoded.requests.map(RequestFields.init))
}

/// Writes a RESULT, decodes its frame and reads it back.
func resultRoundTrip(_ result: WorkerBatchResult<InvocationResponse>) throws -> WorkerBatchResult<InvocationResponse> {
    var buffer = ByteBuffer()
    try WorkerMessages.writeResult(result, into: &buffer)
    return try WorkerMessages.readResult(try onlyFrame(buffer, type: .result).payload)
}

/// A RESULT or INVOKE payload written by hand.
func payload(batchID: UInt64 = 7, count: UInt32, _ rest: [UInt8] = []) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger(batchID, endianness: .little)
    buffer.writeInteger(count, endianness: .little)
    buffer.writeBytes(rest)
    return buffer
}

func success(_ body: String, contentType: String) -> WorkerItemResult<InvocationResponse> {
    .success(InvocationResponse(body: ByteBuffer(string: body), contentType: contentType))
}

@Suite("WorkerMessages: INVOKE")
struct InvokeMessageTests {
    @Test("an INVOKE round-trips")
    func roundTrip() throws {
        let requests = [
            RequestFields(contentType: "text/csv", accept: "application/json", customAttributes: "a=1", body: Array("1,2,3\n".utf8)),
            RequestFields(contentType: "application/octet-stream", body: [0, 0xFF, 0x10, 0]),
        ]
        let decoded = try invokeRoundTrip(batchID: 0xDEAD_BEEF_0000_0001, requests)
        #expect(decoded.batchID == 0xDEAD_BEEF_0000_0001)
        #expect(decoded.requests == requests)
    }

    @Test("empty bodies and empty headers round-trip")
    func empty() throws {
        let requests = [RequestFields(), RequestFields(contentType: "text/plain"), RequestFields()]
        #expect(try invokeRoundTrip(batchID: 0, requests).requests == requests)
    }

    @Test("a batch of no items round-trips")
    func noItems() throws {
        let decoded = try invokeRoundTrip(batchID: .max, [])
        #expect(decoded.batchID == .max)
        #expect(decoded.requests.isEmpty)
    }

    @Test("unicode headers round-trip byte for byte")
    func unicodeHeaders() throws {
        let requests = [
            RequestFields(
                contentType: "application/json; charset=utf-8; note=\"ünïcödé\"",
                accept: "text/plain;q=0.9, 日本語/テキスト",
                customAttributes: "trace=🐆🐈‍⬛,empty=,nul=\u{0}",
                body: Array("{\"x\": \"é\"}".utf8))
        ]
        #expect(try invokeRoundTrip(batchID: 5, requests).requests == requests)
    }

    @Test("a batch of many items round-trips in order")
    func manyItems() throws {
        let requests = (0..<1_000).map { index in
            RequestFields(
                contentType: index.isMultiple(of: 3) ? "" : "type/\(index)", accept: "a\(index)",
                customAttributes: index.isMultiple(of: 2) ? "x=\(index)" : "",
                body: Array(repeating: UInt8(truncatingIfNeeded: index), count: index % 37))
        }
        #expect(try invokeRoundTrip(batchID: 77, requests).requests == requests)
    }

    @Test("a header of 65,535 bytes fits its field")
    func longestHeader() throws {
        let requests = [RequestFields(contentType: String(repeating: "c", count: 65_535), accept: "x")]
        #expect(try invokeRoundTrip(batchID: 1, requests).requests == requests)
    }

    @Test(
        "a header of 65,536 bytes is refused",
        arguments: [
            RequestFields(contentType: String(repeating: "c", count: 65_536)),
            RequestFields(accept: String(repeating: "a", count: 65_536)),
            RequestFields(customAttributes: String(repeating: "é", count: 32_768)),
        ])
    func headerTooLong(request: RequestFields) throws {
        var buffer = ByteBuffer()
        let error = #expect(throws: WorkerProtocolError.self) {
            try WorkerMessages.writeInvoke(batchID: 1, requests: [request.request], into: &buffer)
        }
        #expect(error?.isMalformed == true)
        #expect(error?.description.contains("65536 bytes exceeds 65535") == true)
    }

    @Test("an INVOKE frame has the byte layout of docs/worker-protocol.md")
    func byteLayout() throws {
        var buffer = ByteBuffer()
        let request = RequestFields(contentType: "a/b", accept: "", customAttributes: "x=1", body: Array("hi".utf8))
        try WorkerMessages.writeInvoke(batchID: 0x0102_0304_0506_0708, requests: [request.request], into: &buffer)
        let expected: [UInt8] = [
            0x20, 0x00, 0x00, 0x00,  // length: 32 bytes of body
            0x02,  // version 2
            0x10,  // INVOKE
            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // batch_id u64
            0x01, 0x00, 0x00, 0x00,  // count u32
            0x03, 0x00, 0x61, 0x2F, 0x62,  // content_type "a/b"
            0x00, 0x00,  // accept ""
            0x03, 0x00, 0x78, 0x3D, 0x31,  // custom_attrs "x=1"
            0x02, 0x00, 0x00, 0x00, 0x68, 0x69,  // body "hi"
        ]
        #expect(Array(buffer.readableBytesView) == expected)
    }

    @Test("a SHUTDOWN frame is a header with an empty payload")
    func shutdownLayout() throws {
        var buffer = ByteBuffer()
        WorkerMessages.writeShutdown(into: &buffer)
        #expect(Array(buffer.readableBytesView) == [0x02, 0x00, 0x00, 0x00, 0x02, 0x20])
    }

    @Test("frames append to what the buffer already holds")
    func appends() throws {
        var buffer = ByteBuffer(bytes: [0xAA])
        buffer.moveReaderIndex(forwardBy: 1)
        try WorkerMessages.writeInvoke(batchID: 1, requests: [RequestFields().request], into: &buffer)
        try WorkerMessages.writeInvoke(batchID: 2, requests: [RequestFields(body: [1]).request], into: &buffer)
        let frames = try decodeByteByByte(Array(buffer.readableBytesView))
        #expect(try frames.map { try WorkerMessages.readInvoke($0.payload).batchID } == [1, 2])
    }

    @Test(
        "readInvoke rejects truncated and padded payloads",
        arguments: [
            ("truncated header", payload(count: 1).getSlice(at: 0, length: 11)!),
            ("missing item", payload(count: 1)),
            ("truncated header string", payload(count: 1, [0x05, 0x00, 0x61])),
            ("truncated body", payload(count: 1, [0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0x61])),
            ("trailing bytes", payload(count: 1, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00])),
            ("huge count", payload(count: .max)),
        ])
    func readInvokeRejects(name: String, payload: ByteBuffer) throws {
        let error = #expect(throws: WorkerProtocolError.self, "\(name)") { try WorkerMessages.readInvoke(payload) }
        #expect(error?.isMalformed == true)
    }
}

@Suite("WorkerMessages: RESULT")
struct ResultMessageTests {
    @Test("a RESULT of every status round-trips")
    func roundTrip() throws {
        let result = WorkerBatchResult<InvocationResponse>(
            batchID: 42,
            items: [
                success("[0.25, 0.75]", contentType: "application/json"),
                .badInput(message: "expected 4 features, got 3"),
                .modelError(message: "ValueError: ünïcode ✗ 模型"),
                success("", contentType: ""),
                .badInput(message: ""),
            ])
        #expect(try resultRoundTrip(result) == result)
    }

    @Test("a RESULT of no items and one of many items round-trip")
    func sizes() throws {
        let none = WorkerBatchResult<InvocationResponse>(batchID: 0, items: [])
        #expect(try resultRoundTrip(none) == none)
        let many = WorkerBatchResult<InvocationResponse>(
            batchID: .max,
            items: (0..<2_000).map { index in
                switch index % 3 {
                case 0: success(String(repeating: "x", count: index % 50), contentType: "text/plain")
                case 1: .badInput(message: "bad \(index)")
                default: .modelError(message: "error \(index)")
                }
            })
        #expect(try resultRoundTrip(many) == many)
    }

    @Test("a RESULT frame has the byte layout of docs/worker-protocol.md")
    func byteLayout() throws {
        var buffer = ByteBuffer()
        let result = WorkerBatchResult<InvocationResponse>(
            batchID: 7, items: [success("ok", contentType: "text/plain"), .badInput(message: "no"), .modelError(message: "")])
        try WorkerMessages.writeResult(result, into: &buffer)
        let expected: [UInt8] =
            [0x31, 0x00, 0x00, 0x00, 0x02, 0x11]  // 49 bytes of body, version 2, RESULT
            + [0x07, 0, 0, 0, 0, 0, 0, 0, 0x03, 0, 0, 0]  // batch_id, count
            + [0x00, 0x0A, 0x00] + Array("text/plain".utf8) + [0x02, 0, 0, 0] + Array("ok".utf8)  // OK
            + [0x01, 0x00, 0x00, 0x02, 0, 0, 0] + Array("no".utf8)  // BAD_INPUT, "" content type, message
            + [0x02, 0x00, 0x00, 0x00, 0, 0, 0]  // MODEL_ERROR, empty message
        #expect(Array(buffer.readableBytesView) == expected)
    }

    @Test("a worker's error item may carry a content type, which is ignored")
    func errorWithContentType() throws {
        let item: [UInt8] = [0x02, 0x04, 0x00] + Array("text".utf8) + [0x04, 0, 0, 0] + Array("oops".utf8)
        let result = try WorkerMessages.readResult(payload(count: 1, item))
        #expect(result.items == [.modelError(message: "oops")])
    }

    @Test(
        "readResult rejects truncated items, unknown statuses and trailing bytes",
        arguments: [
            ("truncated header", payload(count: 0).getSlice(at: 0, length: 11)!),
            ("missing item", payload(count: 1)),
            ("second item missing", payload(count: 2, [0x01, 0, 0, 0, 0, 0, 0])),
            ("truncated content type length", payload(count: 1, [0x00, 0x01])),
            ("truncated content type", payload(count: 1, [0x00, 0x04, 0x00, 0x61])),
            ("truncated body length", payload(count: 1, [0x00, 0x00, 0x00, 0x01, 0x00])),
            ("truncated body", payload(count: 1, [0x00, 0x00, 0x00, 0x05, 0, 0, 0, 0x61, 0x62])),
            ("unknown status 3", payload(count: 1, [0x03, 0, 0, 0, 0, 0, 0])),
            ("unknown status 255", payload(count: 1, [0xFF, 0, 0, 0, 0, 0, 0])),
            ("trailing bytes", payload(count: 1, [0x00, 0, 0, 0, 0, 0, 0, 0x00])),
            ("trailing bytes after no items", payload(count: 0, [0x00])),
            ("huge count", payload(count: .max)),
        ])
    func readResultRejects(name: String, payload: ByteBuffer) throws {
        let error = #expect(throws: WorkerProtocolError.self, "\(name)") { try WorkerMessages.readResult(payload) }
        #expect(error?.isMalformed == true)
    }

    @Test("writeResult refuses a content type longer than its field")
    func contentTypeTooLong() throws {
        var buffer = ByteBuffer()
        let result = WorkerBatchResult<InvocationResponse>(batchID: 1, items: [success("x", contentType: String(repeating: "t", count: 65_536))])
        #expect(throws: WorkerProtocolError.self) { try WorkerMessages.writeResult(result, into: &buffer) }
    }
}
