/// `JoinSource Input`: an input record joined with its output, as SageMaker joins them.
///
/// - JSON: an object input gains a last member `"SageMakerOutput"` (replacing the value of one it already has,
///   in place); any other input (an array, a string…) becomes `{"SageMakerInput": <input>, "SageMakerOutput":
///   <output>}`, because SageMaker's joined JSON "must be a key-value pair object". The output is its JSON value if
///   it parses as JSON, else a string of its bytes (a CSV output `0.5,1` becomes `"0.5,1"`).
/// - CSV: the input row, then the output's fields: a JSON array output gives one field per element (strings as
///   their text, other values written compactly, quoted as CSV needs); a JSON object output one quoted field; any
///   other output is taken as CSV fields as it is.
///
/// The `OutputFilter` then applies to the joined record (``OutputAssembler`` does that).
public enum RecordJoiner {
    /// The member SageMaker adds to a joined JSON record.
    public static let outputKey = "SageMakerOutput"
    /// The member SageMaker puts a non-object JSON input under.
    public static let inputKey = "SageMakerInput"

    /// Joins a JSON input record with its output.
    public static func join(input: JSONValue, output: ArraySlice<UInt8>) -> JSONValue {
        let value = outputValue(output)
        guard case .object(var members) = input else {
            return .object([(inputKey, input), (outputKey, value)])
        }
        if let position = members.firstIndex(where: { $0.key == outputKey }) {
            members[position].value = value
        } else {
            members.append((outputKey, value))
        }
        return .object(members)
    }

    /// An output as a JSON value: parsed if it is JSON, else the string of its bytes (invalid UTF-8 replaced).
    public static func outputValue(_ output: ArraySlice<UInt8>) -> JSONValue {
        JSONValue.parsed(output) ?? .string(String(decoding: output, as: UTF8.self))
    }

    /// Appends the CSV row `input`, joined with `output`'s fields, to `row`.
    public static func joinCSV(input: ArraySlice<UInt8>, output: ArraySlice<UInt8>, to row: inout [UInt8]) {
        row.append(contentsOf: input)
        let first = output.first { !($0 == 0x20 || $0 == 0x09) }
        if first == UInt8(ascii: "[") || first == UInt8(ascii: "{"), let value = JSONValue.parsed(output) {
            switch value {
            case .array(let elements):
                var text: [UInt8] = []
                for element in elements {
                    row.append(UInt8(ascii: ","))
                    text.removeAll(keepingCapacity: true)
                    if case .string(let string) = element {
                        text.append(contentsOf: string.utf8)
                    } else {
                        element.write(to: &text)
                    }
                    CSVRow.writeField(text, to: &row)
                }
            default:
                row.append(UInt8(ascii: ","))
                CSVRow.writeField(value.serialized(), to: &row)
            }
            return
        }
        row.append(UInt8(ascii: ","))
        row.append(contentsOf: output)
    }
}
