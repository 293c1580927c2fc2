import ServalCore

/// Splits a worker's output bytes into lines, as they arrive in chunks of any size: without the newline (and a `\r`
/// before it), and no longer than `maxLineBytes` — a longer line is cut on a character boundary into several.
/// Invalid UTF-8 is repaired with U+FFFD.
struct OutputLineSplitter {
    private var pending: [UInt8] = []
    let maxLineBytes: Int

    init(maxLineBytes: Int = WorkerLogLimits.maxMessageBytes) {
        precondition(maxLineBytes >= 4, "a line must hold any one character")
        self.maxLineBytes = maxLineBytes
    }

    /// The lines `bytes` completes.
    mutating func feed(_ bytes: some Collection<UInt8>) -> [String] {
        pending.append(contentsOf: bytes)
        var lines: [String] = []
        var start = 0
        while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
            var end = newline
            if end > start, pending[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            lines += Self.cut(pending[start..<end], maxBytes: maxLineBytes)
            start = newline + 1
        }
        // A line without its newline yet, longer than a line may be: its start goes out now.
        while pending.count - start > maxLineBytes {
            let end = Self.boundary(in: pending, from: start, maxBytes: maxLineBytes)
            lines.append(String(decoding: pending[start..<end], as: UTF8.self))
            start = end
        }
        pending.removeFirst(start)
        return lines
    }

    /// What is left when the output ends: a last line without its newline, if any.
    mutating func finish() -> String? {
        defer { pending = [] }
        return pending.isEmpty ? nil : String(decoding: pending, as: UTF8.self)
    }

    /// `line` in pieces of at most `maxBytes`, each ending on a character boundary.
    private static func cut(_ line: ArraySlice<UInt8>, maxBytes: Int) -> [String] {
        var pieces: [String] = []
        var start = line.startIndex
        while line.endIndex - start > maxBytes {
            let end = boundary(in: line, from: start, maxBytes: maxBytes)
            pieces.append(String(decoding: line[start..<end], as: UTF8.self))
            start = end
        }
        pieces.append(String(decoding: line[start...], as: UTF8.self))
        return pieces
    }

    /// The end of a piece starting at `start`: `maxBytes` on, moved back off the middle of a character.
    private static func boundary<Bytes: RandomAccessCollection<UInt8>>(
        in bytes: Bytes, from start: Int, maxBytes: Int
    ) -> Int where Bytes.Index == Int {
        var end = start + maxBytes
        while end > start + 1, UTF8.isContinuation(bytes[end]) { end -= 1 }
        return end
    }
}
