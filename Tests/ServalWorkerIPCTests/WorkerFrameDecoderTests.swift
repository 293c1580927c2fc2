import NIOCore
import ServalWorkerIPC
import Testing

/// Feeds `bytes` to a decoder one byte at a time and collects every frame it yields.
func decodeByteByByte(_ bytes: [UInt8], decoder: WorkerFrameDecoder = WorkerFrameDecoder()) throws -> [WorkerFrame] {
    var decoder = decoder
    var buffer = ByteBuffer()
    var frames: [WorkerFrame] = []
    for byte in bytes {
        buffer.writeInteger(byte)
        while let frame = try decoder.decode(buffer: &buffer) {
            frames.append(frame)
        }
    }
    #expect(buffer.readableBytes == 0, "bytes left over after the last frame")
    return frames
}

/// The bytes of one frame: `length:u32le version type payload`.
func frameBytes(version: UInt8 = workerProtocolVersion, type: UInt8, payload: [UInt8]) -> [UInt8] {
    let length = UInt32(2 + payload.count)
    return withUnsafeBytes(of: length.littleEndian, Array.init) + [version, type] + payload
}

@Suite("WorkerFrameDecoder")
struct WorkerFrameDecoderTests {
    @Test("several frames fed one byte at a time come out exactly")
    func byteByByte() throws {
        var stream = ByteBuffer()
        WorkerMessages.writeShutdown(into: &stream)
        stream.writeWorkerFrame(type: .ready) { $0.writeString(#"{"protocol": 1, "pid": 42}"#) }
        stream.writeWorkerFrame(type: .loadFailed) { $0.writeString(#"{"message": "ünïcode ✓"}"#) }
        stream.writeWorkerFrame(type: .invoke) { $0.writeBytes([UInt8](repeating: 0xAB, count: 1_000)) }
        stream.writeWorkerFrame(type: .result) { _ in }

        let frames = try decodeByteByByte(Array(stream.readableBytesView))
        #expect(frames.map(\.type) == [.shutdown, .ready, .loadFailed, .invoke, .result])
        #expect(frames[0].payload.readableBytes == 0)
        #expect(String(buffer: frames[1].payload) == #"{"protocol": 1, "pid": 42}"#)
        #expect(String(buffer: frames[2].payload) == #"{"message": "ünïcode ✓"}"#)
        #expect(Array(frames[3].payload.readableBytesView) == [UInt8](repeating: 0xAB, count: 1_000))
        #expect(frames[4].payload.readableBytes == 0)
    }

    @Test("all frames at once decode the same as byte by byte")
    func allAtOnce() throws {
        let bytes =
            frameBytes(type: 0x01, payload: Array("{}".utf8)) + frameBytes(type: 0x20, payload: [])
            + frameBytes(type: 0x11, payload: [1, 2, 3])
        var decoder = WorkerFrameDecoder()
        var buffer = ByteBuffer(bytes: bytes)
        var frames: [WorkerFrame] = []
        while let frame = try decoder.decode(buffer: &buffer) { frames.append(frame) }
        #expect(frames == (try decodeByteByByte(bytes)))
        #expect(frames.count == 3)
    }

    @Test("truncated input asks for more data without an error and consumes nothing", arguments: 0..<12)
    func truncated(keep: Int) throws {
        let whole = frameBytes(type: 0x11, payload: [1, 2, 3, 4, 5, 6])
        #expect(whole.count == 12)
        var decoder = WorkerFrameDecoder()
        var buffer = ByteBuffer(bytes: whole.prefix(keep))
        #expect(try decoder.decode(buffer: &buffer) == nil)
        #expect(buffer.readableBytes == keep)
        #expect(try decoder.decodeLast(buffer: &buffer, seenEOF: true) == nil)
    }

    @Test("a length above the limit throws frameTooLarge as soon as the length is read")
    func frameTooLarge() throws {
        var decoder = WorkerFrameDecoder(maxFrameLength: 16)
        var buffer = ByteBuffer(bytes: [17, 0, 0, 0])
        #expect(throws: WorkerProtocolError.frameTooLarge(length: 17, limit: 16)) {
            try decoder.decode(buffer: &buffer)
        }
        // The limit itself is fine.
        #expect(try decodeByteByByte(frameBytes(type: 0x10, payload: Array(repeating: 7, count: 14)), decoder: decoder).count == 1)
    }

    @Test("the default limit refuses a 4 GiB length without waiting for its body")
    func defaultLimit() throws {
        var decoder = WorkerFrameDecoder()
        var buffer = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: WorkerProtocolError.frameTooLarge(length: 0xFFFF_FFFF, limit: 256 * 1024 * 1024)) {
            try decoder.decode(buffer: &buffer)
        }
        var justAbove = ByteBuffer()
        justAbove.writeInteger(UInt32(256 * 1024 * 1024 + 1), endianness: .little)
        #expect(throws: WorkerProtocolError.self) { try decoder.decode(buffer: &justAbove) }
    }

    @Test("a body shorter than its 2-byte header throws", arguments: [UInt32(0), 1])
    func shortBody(length: UInt32) throws {
        var decoder = WorkerFrameDecoder()
        var buffer = ByteBuffer()
        buffer.writeInteger(length, endianness: .little)
        let error = #expect(throws: WorkerProtocolError.self) { try decoder.decode(buffer: &buffer) }
        #expect(error?.isMalformed == true)
    }

    @Test("another protocol version throws unsupportedVersion", arguments: [UInt8(0), 1, 3, 0xFF])
    func wrongVersion(version: UInt8) throws {
        #expect(throws: WorkerProtocolError.unsupportedVersion(version)) {
            try decodeByteByByte(frameBytes(version: version, type: 0x10, payload: [1, 2]))
        }
    }

    @Test("an unknown message type throws unknownType", arguments: [UInt8(0x00), 0x03, 0x16, 0x21, 0xFF])
    func unknownType(type: UInt8) throws {
        #expect(throws: WorkerProtocolError.unknownType(type)) {
            try decodeByteByByte(frameBytes(type: type, payload: []))
        }
    }

    @Test("errors describe themselves for the log")
    func descriptions() {
        #expect(WorkerProtocolError.unknownType(0x99).description == "unknown worker message type 0x99")
        #expect(WorkerProtocolError.unsupportedVersion(2).description.contains("version 2"))
        #expect(WorkerProtocolError.frameTooLarge(length: 10, limit: 5).description.contains("10 bytes"))
    }
}

extension WorkerProtocolError {
    var isMalformed: Bool {
        if case .malformed = self { return true }
        return false
    }
}
