import NIOCore

extension ByteBuffer {
    /// Appends one ASCII byte.
    @inline(__always)
    mutating func writeASCII(_ byte: Unicode.Scalar) {
        writeInteger(UInt8(ascii: byte))
    }

    /// Appends `string` as a JSON string, quoted and escaped.
    mutating func writeJSONString(_ string: String) {
        var string = string
        string.withUTF8 { writeJSONString(utf8: UnsafeRawBufferPointer($0)) }
    }

    /// Appends well-formed UTF-8 `bytes` as a JSON string, quoted and escaped: `"` and `\` with a backslash,
    /// control characters as `\n`, `\t`, … or `\u00XX`.
    mutating func writeJSONString(utf8 bytes: UnsafeRawBufferPointer) {
        writeASCII("\"")
        var runStart = 0
        for index in 0..<bytes.count {
            let byte = bytes[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<index]))
            runStart = index + 1
            switch byte {
            case UInt8(ascii: "\""): writeStaticString("\\\"")
            case UInt8(ascii: "\\"): writeStaticString("\\\\")
            case 0x08: writeStaticString("\\b")
            case 0x0C: writeStaticString("\\f")
            case 0x0A: writeStaticString("\\n")
            case 0x0D: writeStaticString("\\r")
            case 0x09: writeStaticString("\\t")
            default:
                let hex: StaticString = "0123456789abcdef"
                writeStaticString("\\u00")
                writeInteger(hex.utf8Start[Int(byte >> 4)])
                writeInteger(hex.utf8Start[Int(byte & 0xF)])
            }
        }
        writeBytes(UnsafeRawBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        writeASCII("\"")
    }

    /// Appends an integer in decimal.
    @inline(__always)
    mutating func writeJSONInteger<Value: FixedWidthInteger>(_ value: Value) {
        writeDecimal(magnitude: UInt64(truncatingIfNeeded: value.magnitude), negative: value < 0)
    }

    private mutating func writeDecimal(magnitude: UInt64, negative: Bool) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: 21) { output in
            var digits = 1
            var rest = magnitude
            while rest >= 10 {
                rest /= 10
                digits += 1
            }
            let sign = negative ? 1 : 0
            if negative { output[0] = UInt8(ascii: "-") }
            var index = sign + digits
            rest = magnitude
            repeat {
                index -= 1
                output[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while index > sign
            return sign + digits
        }
    }

    /// Appends a number as the shortest decimal that reads back as the same Double; NaN and infinities as
    /// `NaN`, `Infinity` and `-Infinity`, as Python's `json` module writes them.
    mutating func writeJSONNumber(_ value: Double) {
        guard value.isFinite else {
            writeStaticString(value.isNaN ? "NaN" : value < 0 ? "-Infinity" : "Infinity")
            return
        }
        writeString(value.description)
    }

    /// Appends a number as the shortest decimal that reads back as the same Float; NaN and infinities as
    /// `NaN`, `Infinity` and `-Infinity`.
    mutating func writeJSONNumber(_ value: Float) {
        guard value.isFinite else {
            writeStaticString(value.isNaN ? "NaN" : value < 0 ? "-Infinity" : "Infinity")
            return
        }
        writeString(value.description)
    }
}
