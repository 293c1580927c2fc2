import Testing

@testable import ServalRuntime

@Suite("Worker output lines")
struct OutputLineSplitterTests {
    /// The lines of `output` fed in pieces of `size` bytes, then ended.
    func lines(_ output: [UInt8], pieces size: Int, max: Int = 8) -> [String] {
        var splitter = OutputLineSplitter(maxLineBytes: max)
        var lines: [String] = []
        var start = 0
        while start < output.count {
            lines += splitter.feed(output[start..<min(start + size, output.count)])
            start += size
        }
        if let last = splitter.finish() { lines.append(last) }
        return lines
    }

    @Test("lines lose their newline and a \\r before it; a long line becomes pieces on character boundaries; any chunking gives the same lines")
    func splitting() {
        let output = Array("one\r\ntwo\n\nabcdefghijklmnopq\nééééé\nlast".utf8)
        let expected = ["one", "two", "", "abcdefgh", "ijklmnop", "q", "éééé", "é", "last"]
        for size in [1, 2, 3, 7, 8, 9, output.count] {
            #expect(lines(output, pieces: size) == expected, "pieces of \(size)")
        }
    }

    @Test("a line without a newline goes out as soon as it passes the limit, never holding more than that")
    func unterminated() {
        var splitter = OutputLineSplitter(maxLineBytes: 8)
        #expect(splitter.feed(Array("12345678".utf8)).isEmpty)
        #expect(splitter.feed(Array("9".utf8)) == ["12345678"])
        // A 3-byte character that would straddle the limit moves to the next piece whole.
        #expect(splitter.feed(Array("abcdef€x".utf8)) == ["9abcdef"])
        #expect(splitter.finish() == "€x")
        #expect(splitter.finish() == nil)
        var repaired = OutputLineSplitter(maxLineBytes: 8)
        #expect(repaired.feed([0x66, 0xFF, 0x0A]) == ["f\u{FFFD}"])
    }
}
