public import ServalCore

/// CSV rows (RFC 4180) as filters and joins see them: the fields of one line, each kept as its raw bytes (a quoted
/// field keeps its quotes), so selected fields are written back exactly as they came.
public enum CSVRow {
    /// Appends the raw range of each field of `row` (indices of `row`) to `fields`, which it empties first.
    ///
    /// Fields are separated by commas. A field that starts with `"` is quoted: it runs to the next `"` not doubled
    /// (`""` is a quote inside it) and must be followed by a comma or the row's end. A field that does not start
    /// with `"` runs to the next comma, quotes included. An empty row has one empty field.
    ///
    /// - Throws: ``ServalError/Code/validationError`` for an unterminated quoted field or a byte after a closing
    ///   quote, naming the byte's offset within the row.
    public static func fields(of row: ArraySlice<UInt8>, into fields: inout [Range<Int>]) throws(ServalError) {
        fields.removeAll(keepingCapacity: true)
        var index = row.startIndex
        let end = row.endIndex
        while true {
            let start = index
            if index < end, row[index] == UInt8(ascii: "\"") {
                index += 1
                while true {
                    guard index < end else {
                        throw ServalError(
                            .validationError,
                            "the CSV field at byte \(start - row.startIndex) of the row has no closing quote.")
                    }
                    if row[index] == UInt8(ascii: "\"") {
                        if index + 1 < end, row[index + 1] == UInt8(ascii: "\"") {
                            index += 2
                        } else {
                            index += 1
                            break
                        }
                    } else {
                        index += 1
                    }
                }
                guard index == end || row[index] == UInt8(ascii: ",") else {
                    throw ServalError(
                        .validationError,
                        "the CSV row has a byte after a closing quote at byte \(index - row.startIndex); quote the "
                            + "whole field and double the quotes inside it.")
                }
            } else {
                while index < end, row[index] != UInt8(ascii: ",") { index += 1 }
            }
            fields.append(start..<index)
            guard index < end else { return }
            index += 1  // the comma
        }
    }

    /// Appends `text` to `output` as one CSV field: quoted, with quotes doubled, when it holds a comma, a quote, a
    /// newline or a carriage return; as it is otherwise.
    public static func writeField(_ text: some Collection<UInt8>, to output: inout [UInt8]) {
        let needsQuotes = text.contains {
            $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D
        }
        guard needsQuotes else {
            output.append(contentsOf: text)
            return
        }
        output.append(UInt8(ascii: "\""))
        for byte in text {
            output.append(byte)
            if byte == UInt8(ascii: "\"") { output.append(byte) }
        }
        output.append(UInt8(ascii: "\""))
    }
}
