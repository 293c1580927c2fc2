import NIOCore
import ServalCore
import ServalWorkerIPC
import Testing

/// Writes an INVOKE_FILE, decodes its frame byte by byte and reads it back.
func invokeFileRoundTrip(batchID: UInt64, _ request: FileInvocationRequest) throws -> (batchID: UInt64, request: FileInvocationRequest) {
    var buffer = ByteBuffer()
    try WorkerMessages.writeInvokeFile(batchID: batchID, request: request, into: &buffer)
    return try WorkerMessages.readInvokeFile(try onlyFrame(buffer, type: .invokeFile).payload)
}

/// Writes a FILE_RESULT, decodes its frame byte by byte and reads it back.
func fileResultRoundTrip(
    batchID: UInt64, _ result: WorkerItemResult<FileInvocationResponse>
) throws -> (batchID: UInt64, result: WorkerItemResult<FileInvocationResponse>) {
    var buffer = ByteBuffer()
    try WorkerMessages.writeFileResult(batchID: batchID, result, into: &buffer)
    return try WorkerMessages.readFileResult(try onlyFrame(buffer, type: .fileResult).payload)
}

/// The bytes of a FILE_RESULT payload, written by hand as docs/worker-protocol.md lays it out.
func fileResultPayload(
    batchID: UInt64 = 7, status: UInt8, contentType: String = "", bytesWritten: UInt64 = 0, message: String = ""
) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger(batchID, endianness: .little)
    buffer.writeInteger(status)
    buffer.writeInteger(UInt16(contentType.utf8.count), endianness: .little)
    buffer.writeString(contentType)
    buffer.writeInteger(bytesWritten, endianness: .little)
    buffer.writeInteger(UInt32(message.utf8.count), endianness: .little)
    buffer.writeString(message)
    return buffer
}

let sampleFileRequest = FileInvocationRequest(
    inputPath: "/data/objects/in/ünï cödé.json", outputPath: "/data/tmp/out-1.part", contentType: "text/csv",
    accept: "application/json", customAttributes: "trace=🐆")

@Suite("WorkerMessages: INVOKE_FILE and FILE_RESULT")
struct FileMessageTests {
    @Test("an INVOKE_FILE round-trips, fed one byte at a time")
    func invokeFileRoundTrips() throws {
        let decoded = try invokeFileRoundTrip(batchID: 0xDEAD_BEEF_0000_0001, sampleFileRequest)
        #expect(decoded.batchID == 0xDEAD_BEEF_0000_0001)
        #expect(decoded.request == sampleFileRequest)
        let empty = FileInvocationRequest(inputPath: "/i", outputPath: "/o", contentType: "", accept: "", customAttributes: "")
        #expect(try invokeFileRoundTrip(batchID: 0, empty).request == empty)
    }

    @Test("an INVOKE_FILE frame has the byte layout of docs/worker-protocol.md")
    func invokeFileLayout() throws {
        var buffer = ByteBuffer()
        let request = FileInvocationRequest(inputPath: "/i", outputPath: "/o", contentType: "a/b", accept: "", customAttributes: "x")
        try WorkerMessages.writeInvokeFile(batchID: 0x0102_0304_0506_0708, request: request, into: &buffer)
        let expected: [UInt8] = [
            0x1C, 0x00, 0x00, 0x00,  // length: 28 bytes of body
            0x02,  // version 2
            0x14,  // INVOKE_FILE
            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // batch_id u64
            0x03, 0x00, 0x61, 0x2F, 0x62,  // content_type "a/b"
            0x00, 0x00,  // accept ""
            0x01, 0x00, 0x78,  // custom_attrs "x"
            0x02, 0x00, 0x2F, 0x69,  // input_path "/i"
            0x02, 0x00, 0x2F, 0x6F,  // output_path "/o"
        ]
        #expect(Array(buffer.readableBytesView) == expected)
    }

    @Test(
        "a path longer than its field is refused",
        arguments: [
            FileInvocationRequest(
                inputPath: String(repeating: "p", count: 65_536), outputPath: "/o", contentType: "", accept: "",
                customAttributes: ""),
            FileInvocationRequest(
                inputPath: "/i", outputPath: String(repeating: "é", count: 32_768), contentType: "", accept: "",
                customAttributes: ""),
        ])
    func pathTooLong(request: FileInvocationRequest) throws {
        var buffer = ByteBuffer()
        let error = #expect(throws: WorkerProtocolError.self) {
            try WorkerMessages.writeInvokeFile(batchID: 1, request: request, into: &buffer)
        }
        #expect(error?.description.contains("path of 65536 bytes exceeds 65535") == true)
    }

    @Test("an empty path or one with a NUL byte is refused", arguments: [("", "/o"), ("/i", ""), ("/i\u{0}x", "/o"), ("/i", "/o\u{0}")])
    func badPath(input: String, output: String) throws {
        let request = FileInvocationRequest(inputPath: input, outputPath: output, contentType: "", accept: "", customAttributes: "")
        var buffer = ByteBuffer()
        #expect(throws: WorkerProtocolError.self) {
            try WorkerMessages.writeInvokeFile(batchID: 1, request: request, into: &buffer)
        }
        #expect(buffer.readableBytes == 0)
        var payload = ByteBuffer()
        payload.writeInteger(UInt64(1), endianness: .little)
        for field in ["", "", "", input, output] {
            payload.writeInteger(UInt16(field.utf8.count), endianness: .little)
            payload.writeString(field)
        }
        #expect(throws: WorkerProtocolError.malformed("INVOKE_FILE has an empty path or one with a NUL byte")) {
            try WorkerMessages.readInvokeFile(payload)
        }
    }

    @Test("a truncated INVOKE_FILE payload or one with trailing bytes is refused")
    func malformedInvokeFile() throws {
        var buffer = ByteBuffer()
        try WorkerMessages.writeInvokeFile(batchID: 3, request: sampleFileRequest, into: &buffer)
        let payload = try onlyFrame(buffer, type: .invokeFile).payload
        for length in 0..<payload.readableBytes {
            #expect(throws: WorkerProtocolError.self) {
                try WorkerMessages.readInvokeFile(payload.getSlice(at: payload.readerIndex, length: length)!)
            }
        }
        var longer = payload
        longer.writeInteger(UInt8(0))
        #expect(throws: WorkerProtocolError.malformed("INVOKE_FILE has 1 trailing bytes")) {
            try WorkerMessages.readInvokeFile(longer)
        }
    }

    @Test(
        "a FILE_RESULT of every status round-trips",
        arguments: [
            WorkerItemResult.success(FileInvocationResponse(contentType: "application/json", bytesWritten: 1 << 40)),
            .success(FileInvocationResponse(contentType: "", bytesWritten: 0)),
            .badInput(message: "the input file cannot be read: No such file or directory"),
            .modelError(message: "ValueError: ünïcode ✓"),
            .modelError(message: ""),
        ])
    func fileResultRoundTrips(result: WorkerItemResult<FileInvocationResponse>) throws {
        let decoded = try fileResultRoundTrip(batchID: .max, result)
        #expect(decoded.batchID == .max)
        #expect(decoded.result == result)
    }

    @Test("a FILE_RESULT frame has the byte layout of docs/worker-protocol.md")
    func fileResultLayout() throws {
        var buffer = ByteBuffer()
        try WorkerMessages.writeFileResult(
            batchID: 9, .success(FileInvocationResponse(contentType: "t/c", bytesWritten: 0x0102)), into: &buffer)
        let expected: [UInt8] = [
            0x1C, 0x00, 0x00, 0x00,  // length: 28 bytes of body
            0x02, 0x15,  // version 2, FILE_RESULT
            0x09, 0, 0, 0, 0, 0, 0, 0,  // batch_id u64
            0x00,  // status OK
            0x03, 0x00, 0x74, 0x2F, 0x63,  // content_type "t/c"
            0x02, 0x01, 0, 0, 0, 0, 0, 0,  // bytes_written u64
            0x00, 0x00, 0x00, 0x00,  // message ""
        ]
        #expect(Array(buffer.readableBytesView) == expected)
        let error = try WorkerMessages.readFileResult(fileResultPayload(status: 1, message: "bad"))
        #expect(error.batchID == 7)
        #expect(error.result == .badInput(message: "bad"))
    }

    @Test("a truncated FILE_RESULT, trailing bytes, an unknown status or an impossible count is refused")
    func malformedFileResult() throws {
        let payload = fileResultPayload(status: 2, contentType: "x", message: "boom")
        for length in 0..<payload.readableBytes {
            #expect(throws: WorkerProtocolError.self) {
                try WorkerMessages.readFileResult(payload.getSlice(at: payload.readerIndex, length: length)!)
            }
        }
        var longer = payload
        longer.writeInteger(UInt8(0))
        #expect(throws: WorkerProtocolError.malformed("FILE_RESULT has 1 trailing bytes")) {
            try WorkerMessages.readFileResult(longer)
        }
        #expect(throws: WorkerProtocolError.malformed("FILE_RESULT has unknown status 3")) {
            try WorkerMessages.readFileResult(fileResultPayload(status: 3))
        }
        #expect(throws: WorkerProtocolError.self) {
            try WorkerMessages.readFileResult(fileResultPayload(status: 0, bytesWritten: .max))
        }
    }

    @Test("the new frame types decode, between others, one byte at a time")
    func framesBetweenOthers() throws {
        var stream = ByteBuffer()
        try WorkerMessages.writeInvokeFile(batchID: 1, request: sampleFileRequest, into: &stream)
        try WorkerMessages.writeResult(WorkerBatchResult(batchID: 2, items: [success("x", contentType: "t")]), into: &stream)
        try WorkerMessages.writeFileResult(batchID: 1, .modelError(message: "no"), into: &stream)
        let frames = try decodeByteByByte(Array(stream.readableBytesView))
        #expect(frames.map(\.type) == [.invokeFile, .result, .fileResult])
        #expect(try WorkerMessages.readInvokeFile(frames[0].payload).request == sampleFileRequest)
        #expect(try WorkerMessages.readFileResult(frames[2].payload).result == .modelError(message: "no"))
    }
}
