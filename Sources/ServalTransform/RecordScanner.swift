import ServalCore

/// One record as the scanner found it. Offsets count from the first byte scanned.
struct ScannedRecord {
    /// Its first byte: the line's first byte, or the first byte of its (first) frame header.
    var start: Int
    /// One past its content: for a line, before its `\r\n` or `\n`; for a framed record, ``end``.
    var contentEnd: Int
    /// One past its last byte: after the line's `\n`, or after the frame's padding or checksum.
    var end: Int
    /// The bytes it takes in a payload: a line's content plus `\n`; a framed record with its framing.
    var payloadSize: Int
}

/// Receives the records a ``RecordScanner`` finds, in order.
protocol RecordSink {
    /// Takes the record with the 0-based `index`.
    mutating func take(_ record: ScannedRecord, index: Int) throws(ServalError)
}

/// The framing rules of every split type, in one place: a streaming scanner that accepts bytes in chunks of any
/// size and reports each whole record to a ``RecordSink``. ``UnitPlanner`` and ``RecordSplitter`` both use it.
///
/// - `None`: the bytes are one record (none when there are no bytes).
/// - `Line`: a record is a line, without its `\n` and without a `\r` before it (or before the end). A line that is
///   empty or holds only spaces, tabs, `\r`, `\u{0B}` or `\u{0C}` is not a record; its bytes still belong to the
///   object. The last line needs no `\n`.
/// - `RecordIO` (MXNet): each frame is the magic number `0xced7230a` and a header word (both u32 little-endian):
///   its upper 3 bits are the continuation flag, its lower 29 the data length; the data is padded to 4 bytes.
///   Flag 0 frames a whole record; 1, 2 and 3 frame the first, middle and last part of one logical record, which is
///   one record here.
/// - `TFRecord`: u64 little-endian length, the masked CRC-32C of those 8 bytes, the data, the masked CRC-32C of the
///   data. Both checksums are verified.
///
/// A record whose payload form exceeds `maxRecordBytes` is an error naming it; so is broken or truncated framing,
/// naming the byte offset. After an error the scanner is spent.
struct RecordScanner {
    let splitType: TransformSplitType
    let maxRecordBytes: Int
    /// Bytes scanned so far.
    private(set) var offset = 0
    /// Records reported so far.
    private(set) var count = 0

    // Line state.
    private var lineStart = 0
    private var lineHasContent = false
    private var previousByte: UInt8 = 0x0A
    private var lineNumber = 1

    // Frame state (RecordIO and TFRecord).
    /// The first byte of the frame being read.
    private var frameStart = 0
    /// The first byte of the logical record being read (a multipart RecordIO record spans several frames).
    private var recordStart = 0
    /// Header bytes gathered so far (8 for RecordIO, 12 for TFRecord).
    private var headerFilled = 0
    private var headerLow: UInt64 = 0
    private var headerHigh: UInt32 = 0
    /// Data bytes still to come in the current frame (after them: RecordIO padding, or TFRecord's data CRC).
    private var dataRemaining = 0
    /// RecordIO padding, or TFRecord checksum bytes, still to come.
    private var trailerRemaining = 0
    private var trailer: UInt32 = 0
    private var dataCRC = CRC32C()
    private var inMultipart = false
    private var lastPart = true

    init(splitType: TransformSplitType, maxRecordBytes: Int) {
        self.splitType = splitType
        self.maxRecordBytes = maxRecordBytes
    }

    /// Scans the next bytes of the stream.
    mutating func scan<Sink: RecordSink>(_ chunk: UnsafeRawBufferPointer, into sink: inout Sink) throws(ServalError) {
        switch splitType {
        case .none:
            offset += chunk.count
            if offset > maxRecordBytes {
                throw ServalError(
                    .validationError,
                    "the object is larger than the maximum payload of \(maxRecordBytes) bytes\(megabytes(maxRecordBytes)), "
                        + "and SplitType None sends it whole as one record; split it with SplitType Line, RecordIO or "
                        + "TFRecord, or raise MaxPayloadInMB (at most 100).")
            }
        case .line:
            try scanLines(chunk, into: &sink)
        case .recordIO, .tfRecord:
            try scanFrames(chunk, into: &sink)
        }
    }

    /// Ends the stream: reports a last line without `\n`, or the whole object for `None`; throws if the stream
    /// ends inside a frame.
    mutating func finish<Sink: RecordSink>(into sink: inout Sink) throws(ServalError) {
        switch splitType {
        case .none:
            if offset > 0 {
                try emit(ScannedRecord(start: 0, contentEnd: offset, end: offset, payloadSize: offset), into: &sink)
            }
        case .line:
            if lineHasContent {
                let contentEnd = previousByte == 0x0D ? offset - 1 : offset
                try emitLine(contentEnd: contentEnd, end: offset, into: &sink)
                lineHasContent = false
            }
        case .recordIO, .tfRecord:
            if headerFilled > 0 || dataRemaining > 0 || trailerRemaining > 0 || inMultipart {
                let format = splitType == .recordIO ? "RecordIO" : "TFRecord"
                throw ServalError(
                    .validationError,
                    "the object ends at byte \(offset), inside the \(format) record that starts at byte "
                        + "\(inMultipart ? recordStart : frameStart): it is truncated or not \(format).")
            }
        }
    }

    // MARK: Lines

    private mutating func scanLines<Sink: RecordSink>(
        _ chunk: UnsafeRawBufferPointer, into sink: inout Sink
    ) throws(ServalError) {
        let base = offset
        let count = chunk.count
        var index = 0
        while index < count {
            if lineHasContent {
                // The common case: the line has content; find its end.
                while index < count, chunk[index] != 0x0A { index += 1 }
                guard index < count else { break }
                let before = index > 0 ? chunk[index - 1] : previousByte
                let newline = base + index
                offset = newline + 1
                try emitLine(contentEnd: before == 0x0D ? newline - 1 : newline, end: newline + 1, into: &sink)
                startLine(at: newline + 1)
                previousByte = 0x0A
                index += 1
            } else {
                let byte = chunk[index]
                if byte == 0x0A {
                    startLine(at: base + index + 1)
                } else if !(byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0B || byte == 0x0C) {
                    lineHasContent = true
                }
                previousByte = byte
                index += 1
            }
        }
        if count > 0 { previousByte = chunk[count - 1] }
        offset = base + count
    }

    private mutating func startLine(at start: Int) {
        lineStart = start
        lineHasContent = false
        lineNumber += 1
    }

    private mutating func emitLine<Sink: RecordSink>(
        contentEnd: Int, end: Int, into sink: inout Sink
    ) throws(ServalError) {
        let size = contentEnd - lineStart + 1
        if size > maxRecordBytes {
            throw tooLarge("record \(count + 1) (line \(lineNumber))", size, note: " with its newline")
        }
        try emit(ScannedRecord(start: lineStart, contentEnd: contentEnd, end: end, payloadSize: size), into: &sink)
    }

    // MARK: Frames

    private var headerSize: Int { splitType == .recordIO ? 8 : 12 }

    private mutating func scanFrames<Sink: RecordSink>(
        _ chunk: UnsafeRawBufferPointer, into sink: inout Sink
    ) throws(ServalError) {
        let base = offset
        let count = chunk.count
        var index = 0
        while index < count {
            if dataRemaining > 0 {
                let take = min(dataRemaining, count - index)
                if splitType == .tfRecord {
                    dataCRC.update(UnsafeRawBufferPointer(rebasing: chunk[index..<index + take]))
                }
                dataRemaining -= take
                index += take
                if dataRemaining == 0, trailerRemaining == 0 {
                    offset = base + index
                    try endFrame(into: &sink)
                }
            } else if trailerRemaining > 0 {
                let byte = chunk[index]
                if splitType == .tfRecord { trailer |= UInt32(byte) << (8 * (4 - trailerRemaining)) }
                trailerRemaining -= 1
                index += 1
                if trailerRemaining == 0 {
                    offset = base + index
                    try endFrame(into: &sink)
                }
            } else {
                if headerFilled == 0 { frameStart = base + index }
                let byte = chunk[index]
                if headerFilled < 8 {
                    headerLow |= UInt64(byte) << (8 * headerFilled)
                } else {
                    headerHigh |= UInt32(byte) << (8 * (headerFilled - 8))
                }
                headerFilled += 1
                index += 1
                if headerFilled == headerSize {
                    offset = base + index
                    try splitType == .recordIO ? startRecordIOFrame() : startTFRecordFrame()
                    if dataRemaining == 0, trailerRemaining == 0 { try endFrame(into: &sink) }
                }
            }
        }
        offset = base + count
    }

    private mutating func startRecordIOFrame() throws(ServalError) {
        let magic = UInt32(truncatingIfNeeded: headerLow)
        let word = UInt32(truncatingIfNeeded: headerLow >> 32)
        headerFilled = 0
        headerLow = 0
        guard magic == 0xCED7_230A else {
            throw ServalError(
                .validationError,
                "byte \(frameStart) should start a RecordIO record with the magic number 0xced7230a but holds "
                    + "0x\(String(magic, radix: 16)); the object is not MXNet RecordIO or is corrupt.")
        }
        let flag = word >> 29
        let length = Int(word & 0x1FFF_FFFF)
        switch flag {
        case 0, 1:
            guard !inMultipart else {
                throw ServalError(
                    .validationError,
                    "the RecordIO record at byte \(recordStart) is split in parts, but the frame at byte \(frameStart) "
                        + "starts a new record before its last part; the object is corrupt.")
            }
            recordStart = frameStart
            inMultipart = flag == 1
            lastPart = flag == 0
        case 2, 3:
            guard inMultipart else {
                throw ServalError(
                    .validationError,
                    "the RecordIO frame at byte \(frameStart) continues a record (flag \(flag)) that never started; "
                        + "the object is corrupt.")
            }
            inMultipart = flag == 2
            lastPart = flag == 3
        default:
            throw ServalError(
                .validationError,
                "the RecordIO frame at byte \(frameStart) has continuation flag \(flag) (0 to 3 are defined); "
                    + "the object is corrupt.")
        }
        dataRemaining = length
        trailerRemaining = (4 - length % 4) % 4
        let size = frameStart + 8 + length + trailerRemaining - recordStart
        if size > maxRecordBytes { throw tooLarge("record \(count + 1) (at byte \(recordStart))", size) }
    }

    private mutating func startTFRecordFrame() throws(ServalError) {
        let length = headerLow
        let lengthCRC = headerHigh
        headerFilled = 0
        headerLow = 0
        headerHigh = 0
        var crc = CRC32C()
        withUnsafeBytes(of: length.littleEndian) { crc.update($0) }
        guard crc.masked == lengthCRC else {
            throw ServalError(
                .validationError,
                "the TFRecord length at byte \(frameStart) fails its CRC check; the object is not TFRecord or is "
                    + "corrupt.")
        }
        recordStart = frameStart
        guard length <= UInt64(max(0, maxRecordBytes - 16)) else {
            let size = length > UInt64(Int.max - 16) ? Int.max : Int(length) + 16
            throw tooLarge("record \(count + 1) (at byte \(recordStart))", size)
        }
        dataRemaining = Int(length)
        trailerRemaining = 4
        trailer = 0
        dataCRC = CRC32C()
        lastPart = true
    }

    private mutating func endFrame<Sink: RecordSink>(into sink: inout Sink) throws(ServalError) {
        if splitType == .tfRecord, dataCRC.masked != trailer {
            throw ServalError(
                .validationError,
                "record \(count + 1) (at byte \(recordStart)) fails its TFRecord data CRC check; the object is "
                    + "corrupt.")
        }
        guard lastPart else { return }
        try emit(
            ScannedRecord(start: recordStart, contentEnd: offset, end: offset, payloadSize: offset - recordStart),
            into: &sink)
    }

    // MARK: Common

    private mutating func emit<Sink: RecordSink>(_ record: ScannedRecord, into sink: inout Sink) throws(ServalError) {
        let index = count
        count += 1
        try sink.take(record, index: index)
    }

    private func tooLarge(_ name: String, _ size: Int, note: String = "") -> ServalError {
        ServalError(.validationError, RecordScanner.tooLargeMessage(name, size, limit: maxRecordBytes, note: note))
    }

    /// "record 3 (line 4) is 7340033 bytes, more than the maximum payload of …".
    static func tooLargeMessage(_ name: String, _ size: Int, limit: Int, note: String = "") -> String {
        "\(name) is \(size) bytes\(note), more than the maximum payload of \(limit) bytes\(megabytes(limit)); "
            + "raise MaxPayloadInMB (at most 100) or make the record smaller."
    }
}

/// " (MaxPayloadInMB 6)" when `limit` is whole megabytes, for messages.
func megabytes(_ limit: Int) -> String {
    limit % TransformLimits.bytesPerMB == 0 ? " (MaxPayloadInMB \(limit / TransformLimits.bytesPerMB))" : ""
}
