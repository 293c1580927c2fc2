import NIOCore
import ServalCore

/// Where an element sits, for error messages.
struct ElementSite {
    /// The input's name.
    var input: String
    /// The element's row-major index.
    var index: Int
    /// The input's datatype.
    var datatype: TensorDatatype
}

/// Decodes one JSON element of a fixed-size datatype into its bits.
protocol FixedElementDecoder {
    /// The element's bits, written little-endian.
    associatedtype Word: FixedWidthInteger

    /// Decodes the value at the scanner's position (after whitespace; not an array).
    static func decode(_ scanner: inout JSONScanner, site: ElementSite) throws(ServalError) -> Word
}

extension JSONScanner {
    /// Decodes an input's `data`, a flat or nested (row-major) array of elements of `datatype`, into a new buffer;
    /// returns it and the number of elements. `expectedCount`, the element count of the shape when known, only
    /// sizes the buffer.
    mutating func decodeTensorData(
        _ datatype: TensorDatatype, input: String, expectedCount: Int?
    ) throws(ServalError) -> (data: ByteBuffer, count: Int) {
        switch datatype {
        case .bool: try decodeElements(BoolElement.self, datatype, input, expectedCount)
        case .uint8: try decodeElements(IntegerElement<UInt8>.self, datatype, input, expectedCount)
        case .uint16: try decodeElements(IntegerElement<UInt16>.self, datatype, input, expectedCount)
        case .uint32: try decodeElements(IntegerElement<UInt32>.self, datatype, input, expectedCount)
        case .uint64: try decodeElements(IntegerElement<UInt64>.self, datatype, input, expectedCount)
        case .int8: try decodeElements(IntegerElement<Int8>.self, datatype, input, expectedCount)
        case .int16: try decodeElements(IntegerElement<Int16>.self, datatype, input, expectedCount)
        case .int32: try decodeElements(IntegerElement<Int32>.self, datatype, input, expectedCount)
        case .int64: try decodeElements(IntegerElement<Int64>.self, datatype, input, expectedCount)
        case .fp16: try decodeElements(NarrowFloatElement<Binary16>.self, datatype, input, expectedCount)
        case .fp32: try decodeElements(NarrowFloatElement<Binary32>.self, datatype, input, expectedCount)
        case .fp64: try decodeElements(DoubleElement.self, datatype, input, expectedCount)
        case .bf16: try decodeElements(NarrowFloatElement<BFloat16>.self, datatype, input, expectedCount)
        case .bytes: try decodeStrings(input, expectedCount)
        }
    }

    /// Fixed-size elements go to raw memory first, then into the buffer in one copy: far cheaper than a
    /// `ByteBuffer` write per element.
    private mutating func decodeElements<Element: FixedElementDecoder>(
        _: Element.Type, _ datatype: TensorDatatype, _ input: String, _ expectedCount: Int?
    ) throws(ServalError) -> (data: ByteBuffer, count: Int) {
        let size = MemoryLayout<Element.Word>.size
        // Every element takes at least two bytes of JSON, so the text bounds the memory whatever the shape claims.
        let mostElements = (bytes.count - position) / 2 + 1
        var capacity = max(min(expectedCount ?? 64, mostElements), 16)
        var staging = UnsafeMutablePointer<Element.Word>.allocate(capacity: capacity)
        defer { staging.deallocate() }
        let count = try walkElements(datatype, input) { (scanner, site) throws(ServalError) in
            let word = try Element.decode(&scanner, site: site)
            if site.index == capacity {
                let grown = UnsafeMutablePointer<Element.Word>.allocate(capacity: capacity * 2)
                grown.moveInitialize(from: staging, count: capacity)
                staging.deallocate()
                staging = grown
                capacity *= 2
            }
            staging[site.index] = word.littleEndian
        }
        var buffer = ByteBufferAllocator().buffer(capacity: count * size)
        buffer.writeBytes(UnsafeRawBufferPointer(start: staging, count: count * size))
        return (buffer, count)
    }

    /// BYTES elements vary in length: they go straight to the buffer.
    private mutating func decodeStrings(_ input: String, _ expectedCount: Int?) throws(ServalError) -> (
        data: ByteBuffer, count: Int
    ) {
        let mostElements = (bytes.count - position) / 3 + 1
        var buffer = ByteBufferAllocator().buffer(capacity: min(expectedCount ?? 0, mostElements) * 8)
        let count = try walkElements(.bytes, input) { (scanner, site) throws(ServalError) in
            try BytesElement.decode(&scanner, into: &buffer, site: site)
        }
        return (buffer, count)
    }

    /// Walks a flat or nested array of elements, calling `element` for each (at its first byte) with its
    /// row-major index; returns how many there were.
    @inline(__always)
    private mutating func walkElements(
        _ datatype: TensorDatatype, _ input: String,
        _ element: (inout JSONScanner, ElementSite) throws(ServalError) -> Void
    ) throws(ServalError) -> Int {
        guard try peek(expecting: "\"data\" (an array)") == UInt8(ascii: "[") else {
            throw ServalError(
                .validationError,
                "Input \"\(input)\": \"data\" must be an array of \(datatype.rawValue) elements, not \(describeValue())."
            )
        }
        var site = ElementSite(input: input, index: 0, datatype: datatype)
        try enterNestedArray()
        var open = 1
        var justOpened = true
        while true {
            let byte = try peek(expecting: "an element")
            if byte == UInt8(ascii: "[") {
                try enterNestedArray()
                open += 1
                justOpened = true
                continue
            }
            if justOpened, byte == UInt8(ascii: "]") {
                leaveNestedArray()
                open -= 1
                if open == 0 { return site.index }
            } else {
                try element(&self, site)
                site.index += 1
            }
            justOpened = false
            while true {
                let separator = try peek(expecting: "',' or ']'")
                if separator == UInt8(ascii: ",") {
                    position += 1
                    break
                }
                guard separator == UInt8(ascii: "]") else { throw syntaxError(expecting: "',' or ']'") }
                leaveNestedArray()
                open -= 1
                if open == 0 { return site.index }
            }
        }
    }

    /// The error for an element of the wrong kind at the current position (or a syntax error when no value starts
    /// there).
    mutating func elementMismatch(_ site: ElementSite, expected: String) -> ServalError {
        switch bytes[position] {
        case UInt8(ascii: "{"), UInt8(ascii: "\""), UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            break
        case let byte where Self.startsNumber(byte):
            break
        default:
            return syntaxError(expecting: "a value")
        }
        return ServalError(
            .validationError,
            "Input \"\(site.input)\": \"data\" element \(site.index) is \(describeValue()), but \(site.datatype.rawValue) "
                + "elements must be \(expected).")
    }

    /// The error for an element at `start` whose value does not fit the datatype.
    mutating func elementOutOfRange(_ site: ElementSite, start: Int, range: String) -> ServalError {
        position = start
        return ServalError(
            .validationError,
            "Input \"\(site.input)\": \"data\" element \(site.index) is \(describeValue()), out of range for "
                + "\(site.datatype.rawValue) (\(range)); send values in range or use a wider datatype.")
    }
}

/// BOOL: `true` or `false`, one byte each.
enum BoolElement: FixedElementDecoder {
    static func decode(_ scanner: inout JSONScanner, site: ElementSite) throws(ServalError) -> UInt8 {
        switch scanner.bytes[scanner.position] {
        case UInt8(ascii: "t"):
            try scanner.readLiteral("true")
            return 1
        case UInt8(ascii: "f"):
            try scanner.readLiteral("false")
            return 0
        default:
            throw scanner.elementMismatch(site, expected: "true or false")
        }
    }
}

/// The integer datatypes: JSON integers within the type's range.
enum IntegerElement<Value: FixedWidthInteger>: FixedElementDecoder {
    @inline(__always)
    static func decode(_ scanner: inout JSONScanner, site: ElementSite) throws(ServalError) -> Value {
        let start = scanner.position
        switch scanner.scanInteger() {
        case .value(let negative, let magnitude):
            if negative {
                let limit: UInt64 = Value.isSigned ? UInt64(Value.max) + 1 : 0
                guard magnitude <= limit else { throw outOfRange(&scanner, site, start) }
                return Value(truncatingIfNeeded: 0 &- magnitude)
            } else {
                guard magnitude <= UInt64(Value.max) else { throw outOfRange(&scanner, site, start) }
                return Value(truncatingIfNeeded: magnitude)
            }
        case .tooLarge:
            throw outOfRange(&scanner, site, start)
        case .notInteger:
            throw scanner.elementMismatch(site, expected: "integers")
        }
    }

    private static func outOfRange(_ scanner: inout JSONScanner, _ site: ElementSite, _ start: Int) -> ServalError {
        scanner.elementOutOfRange(site, start: start, range: "\(Value.min) to \(Value.max)")
    }
}

/// FP64: any JSON number (or `NaN`, `Infinity`, `-Infinity`), correctly rounded.
enum DoubleElement: FixedElementDecoder {
    @inline(never)
    static func decode(_ scanner: inout JSONScanner, site: ElementSite) throws(ServalError) -> UInt64 {
        let start = scanner.position
        guard JSONScanner.startsNumber(scanner.bytes[start]) else {
            throw scanner.elementMismatch(site, expected: "numbers")
        }
        let number = try scanner.scanNumber()
        let value = FloatParsing.double(number, text: scanner.bytes)
        guard value.isFinite || number.kind != .finite else {
            throw scanner.elementOutOfRange(
                site, start: start, range: "magnitudes up to \(Double.greatestFiniteMagnitude)")
        }
        return value.bitPattern
    }
}

/// FP32, FP16 and BF16: any JSON number (or `NaN`, `Infinity`, `-Infinity`), correctly rounded to the format.
enum NarrowFloatElement<Format: NarrowFloatFormat>: FixedElementDecoder {
    // Not inlined into the array walk: one loop holding everything spills registers (measured: 40% slower).
    @inline(never)
    static func decode(_ scanner: inout JSONScanner, site: ElementSite) throws(ServalError) -> Format.Word {
        let start = scanner.position
        guard JSONScanner.startsNumber(scanner.bytes[start]) else {
            throw scanner.elementMismatch(site, expected: "numbers")
        }
        let number = try scanner.scanNumber()
        if let bits = FloatParsing.quickNarrow(number, to: Format.self) {
            return Format.Word(truncatingIfNeeded: bits)
        }
        let value = FloatParsing.double(number, text: scanner.bytes)
        let bits: UInt32?
        if value.isFinite {
            let text = scanner.bytes
            bits = FloatParsing.narrow(value, to: Format.self) { FloatParsing.compare(number, text: text, with: value) }
        } else if number.kind == .nan {
            bits = Format.nanBits
        } else if number.kind == .infinity {
            bits = Format.infinityBits | (number.negative ? Format.signBit : 0)
        } else {
            bits = nil
        }
        guard let bits else {
            throw scanner.elementOutOfRange(site, start: start, range: "magnitudes up to \(Format.largestFinite)")
        }
        return Format.Word(truncatingIfNeeded: bits)
    }
}

/// BYTES: JSON strings, each written as a little-endian `u32` length and its UTF-8 bytes.
enum BytesElement {
    /// Decodes the string at the scanner's position into `buffer`.
    static func decode(
        _ scanner: inout JSONScanner, into buffer: inout ByteBuffer, site: ElementSite
    ) throws(ServalError) {
        guard scanner.bytes[scanner.position] == UInt8(ascii: "\"") else {
            throw scanner.elementMismatch(site, expected: "strings")
        }
        let string = try scanner.readString()
        guard string.hasEscapes else {
            buffer.writeInteger(UInt32(string.end - string.start), endianness: .little)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: scanner.bytes[string.start..<string.end]))
            return
        }
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        var length: UInt32 = 0
        scanner.forEachByte(of: string) { byte in
            buffer.writeInteger(byte)
            length += 1
        }
        buffer.setInteger(length, at: lengthIndex, endianness: .little)
    }
}
