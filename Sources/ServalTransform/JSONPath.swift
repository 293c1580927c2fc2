public import ServalCore

/// A JSONPath filter in the subset SageMaker batch transform supports (`DataProcessing.InputFilter` and
/// `OutputFilter`), applied to a JSON value or to the fields of a CSV row.
///
/// Syntax: `$` (the record) followed by steps:
/// - `.name` or `['name']` (also `["name"]`, and `.['name']`): an object's member;
/// - `['a','b']`: several members; the result is an object holding those present, in the order listed;
/// - `[1]`, `[-1]` (from the end): an array element;
/// - `[1,3]`, `[2:5]` (end excluded), `[:5]`, `[2:]`, `[-2:]`, mixed as in `[0,5:]`: several elements; the result
///   is an array in the order listed;
/// - `*`, `.*` or `[*]`: every member value or element, as an array.
///
/// Only the last step may select several (SageMaker: "additional nesting of children within brackets is not
/// supported"). Not supported: `..`, filters `[?()]`, scripts, slice steps `[a:b:c]`.
///
/// Missing data: a single name or index that is absent is an error, and so is any index beyond the array (SageMaker
/// errors on "indexes that aren't within the dimension size"); a slice takes what exists; a multi-name selection
/// leaves out absent names (Jayway JsonPath's behaviour, which SageMaker's examples follow).
///
/// A CSV row is an array of its fields: only `$` and a single step of indices, slices or `*` apply (see
/// ``selectsColumns``).
public struct JSONPath: Sendable, Equatable, CustomStringConvertible {
    /// One selection inside a step.
    public enum Selector: Sendable, Equatable {
        case name(String)
        case index(Int)
        /// `[start:end]`; `nil` for an omitted bound. Negative bounds count from the end.
        case slice(start: Int?, end: Int?)
        case wildcard
    }

    /// A step after `$` and its source text (for messages).
    struct Step: Sendable, Equatable {
        var selectors: [Selector]
        var text: String

        /// A step that selects exactly one member or element.
        var isSingle: Bool {
            guard selectors.count == 1 else { return false }
            switch selectors[0] {
            case .name, .index: return true
            case .slice, .wildcard: return false
            }
        }
    }

    /// The expression as given.
    public let expression: String
    /// The request field it came from, for messages: `DataProcessing.InputFilter` or `DataProcessing.OutputFilter`.
    public let field: String
    let steps: [Step]

    /// Parses `expression`.
    ///
    /// - Throws: ``ServalError/Code/validationError``
    ///   `DataProcessing.InputFilter "$[a" is not a supported JSONPath: … (at character 3)`.
    public init(_ expression: String, field: String = "DataProcessing.InputFilter") throws(ServalError) {
        self.expression = expression
        self.field = field
        var parser = Parser(bytes: Array(expression.utf8), expression: expression, field: field)
        steps = try parser.parse()
    }

    /// The selections of each step after `$`.
    public var selectors: [[Selector]] { steps.map(\.selectors) }

    /// Whether it is `$`: the whole record.
    public var isRoot: Bool { steps.isEmpty }

    /// Whether it applies to CSV rows: `$`, or one step of indices, slices or `*`.
    public var selectsColumns: Bool {
        guard steps.count <= 1 else { return false }
        return steps.first?.selectors.allSatisfy { if case .name = $0 { false } else { true } } ?? true
    }

    public var description: String { expression }

    /// The part of `value` the path selects (see the type's documentation for the shape of the result).
    ///
    /// - Parameter record: the record's 0-based index within its object, named in errors.
    /// - Throws: ``ServalError/Code/validationError`` when the value does not have what the path names.
    public func select(in value: JSONValue, record: Int? = nil) throws(ServalError) -> JSONValue {
        var current = value
        var location = "$"
        for step in steps.dropLast() {
            current = try single(step.selectors[0], in: current, at: location, record: record)
            location += step.text
        }
        guard let last = steps.last else { return current }
        if last.isSingle { return try single(last.selectors[0], in: current, at: location, record: record) }
        switch (last.selectors[0], current) {
        case (.wildcard, .object(let members)):
            return .array(members.map(\.value))
        case (.wildcard, .array):
            return current
        case (.name, .object(let members)):
            var selected: [(key: String, value: JSONValue)] = []
            for case .name(let name) in last.selectors {
                if let member = members.first(where: { $0.key == name }) { selected.append(member) }
            }
            return .object(selected)
        case (.name, _):
            throw mismatch("\(location) is \(kind(current)), not an object", record: record)
        case (.wildcard, _):
            throw mismatch("\(location) is \(kind(current)), not an object or an array", record: record)
        case (_, .array(let elements)):
            let positions = try positions(last.selectors, count: elements.count, at: location, record: record)
            return .array(positions.map { elements[$0] })
        default:
            throw mismatch("\(location) is \(kind(current)), not an array", record: record)
        }
    }

    /// The positions of the columns the path selects in a CSV row of `count` fields, in selection order.
    /// Requires ``selectsColumns``.
    ///
    /// - Parameter record: the record's 0-based index within its object, named in errors.
    /// - Throws: ``ServalError/Code/validationError`` for an index beyond the row.
    public func selectColumns(count: Int, record: Int? = nil) throws(ServalError) -> [Int] {
        precondition(selectsColumns, "selectColumns(count:) needs a column selection")
        guard let last = steps.first else { return Array(0..<count) }
        if last.selectors == [.wildcard] { return Array(0..<count) }
        return try positions(last.selectors, count: count, at: "the row", unit: "columns", record: record)
    }

    // MARK: Evaluation

    private func single(
        _ selector: Selector, in value: JSONValue, at location: String, record: Int?
    ) throws(ServalError) -> JSONValue {
        switch (selector, value) {
        case (.name(let name), .object(let members)):
            guard let member = members.first(where: { $0.key == name }) else {
                throw mismatch("\(location) has no key \"\(name)\"", record: record)
            }
            return member.value
        case (.name, _):
            throw mismatch("\(location) is \(kind(value)), not an object", record: record)
        case (.index(let index), .array(let elements)):
            let position = try positions([.index(index)], count: elements.count, at: location, record: record)[0]
            return elements[position]
        default:
            throw mismatch("\(location) is \(kind(value)), not an array", record: record)
        }
    }

    private func positions(
        _ selectors: [Selector], count: Int, at location: String, unit: String = "elements", record: Int?
    ) throws(ServalError) -> [Int] {
        var positions: [Int] = []
        for selector in selectors {
            switch selector {
            case .index(let index):
                let position = index < 0 ? count + index : index
                guard position >= 0, position < count else {
                    throw mismatch("\(location) has \(count) \(unit); index \(index) is out of range", record: record)
                }
                positions.append(position)
            case .slice(let start, let end):
                func bound(_ value: Int?, default fallback: Int) -> Int {
                    guard let value else { return fallback }
                    return value < 0 ? max(0, count + value) : min(value, count)
                }
                let from = bound(start, default: 0)
                let to = bound(end, default: count)
                if from < to { positions.append(contentsOf: from..<to) }
            case .wildcard:
                positions.append(contentsOf: 0..<count)
            case .name:
                preconditionFailure("names are not positions")
            }
        }
        return positions
    }

    private func kind(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    private func mismatch(_ reason: String, record: Int?) -> ServalError {
        let subject = record.map { "record \($0 + 1)" } ?? "the record"
        return ServalError(.validationError, "\(field) \"\(expression)\" does not fit \(subject): \(reason).")
    }

    // MARK: Parsing

    private struct Parser {
        let bytes: [UInt8]
        let expression: String
        let field: String
        var index = 0

        func fail(_ reason: String, at position: Int? = nil) -> ServalError {
            let character = (position ?? index) + 1
            return ServalError(
                .validationError,
                "\(field) \"\(expression)\" is not a supported JSONPath: \(reason) (at character \(character)). "
                    + "Supported: $, $.a, $.a.b, $['a'], $['a','b'], $[1], $[-1], $[1,3], $[2:5], $[1:], $[*].")
        }

        mutating func parse() throws(ServalError) -> [Step] {
            guard !bytes.isEmpty else { throw fail("it is empty") }
            guard bytes[0] == UInt8(ascii: "$") else { throw fail("it must start with $, the record", at: 0) }
            index = 1
            var steps: [Step] = []
            while index < bytes.count {
                let start = index
                var selectors: [Selector]
                switch bytes[index] {
                case UInt8(ascii: "."):
                    index += 1
                    guard index < bytes.count else { throw fail("expected a name after '.'") }
                    switch bytes[index] {
                    case UInt8(ascii: "."): throw fail("recursive descent (..) is not supported", at: index - 1)
                    case UInt8(ascii: "["): selectors = try parseBracket()
                    case UInt8(ascii: "*"):
                        index += 1
                        selectors = [.wildcard]
                    default: selectors = [.name(try parseDotName())]
                    }
                case UInt8(ascii: "["):
                    selectors = try parseBracket()
                default:
                    throw fail(
                        "expected '.' or '[' to start a step, found '\(String(decoding: [bytes[index]], as: UTF8.self))'"
                    )
                }
                if let previous = steps.last, !previous.isSingle {
                    throw fail(
                        "only the last step may select several elements or members; \"\(previous.text)\" selects several",
                        at: start)
                }
                steps.append(Step(selectors: selectors, text: String(decoding: bytes[start..<index], as: UTF8.self)))
            }
            return steps
        }

        mutating func parseDotName() throws(ServalError) -> String {
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "."), bytes[index] != UInt8(ascii: "[") {
                if Array("]'\"*,()?@ \t".utf8).contains(bytes[index]) {
                    throw fail(
                        "'\(String(decoding: [bytes[index]], as: UTF8.self))' cannot appear in a name after '.'; use ['name']"
                    )
                }
                index += 1
            }
            guard index > start else { throw fail("expected a name after '.'") }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        mutating func skipSpaces() {
            while index < bytes.count, bytes[index] == UInt8(ascii: " ") { index += 1 }
        }

        /// Parses `[ … ]` starting at its `[`.
        mutating func parseBracket() throws(ServalError) -> [Selector] {
            let open = index
            index += 1
            skipSpaces()
            if index < bytes.count {
                if bytes[index] == UInt8(ascii: "?") { throw fail("filter expressions [?(…)] are not supported") }
                if bytes[index] == UInt8(ascii: "(") { throw fail("script expressions [(…)] are not supported") }
                if bytes[index] == UInt8(ascii: "]") { throw fail("empty brackets") }
            }
            var selectors: [Selector] = []
            while true {
                skipSpaces()
                guard index < bytes.count else { throw fail("the '[' at character \(open + 1) is not closed") }
                let start = index
                switch bytes[index] {
                case UInt8(ascii: "'"), UInt8(ascii: "\""):
                    selectors.append(.name(try parseQuotedName()))
                case UInt8(ascii: "*"):
                    index += 1
                    selectors.append(.wildcard)
                case UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    selectors.append(try parseIndexOrSlice())
                default:
                    throw fail("expected a quoted name, an index, a slice or '*'")
                }
                if selectors.count > 1 {
                    let kinds = Set(
                        selectors.map { selector -> Int in
                            switch selector {
                            case .name: 0
                            case .index, .slice: 1
                            case .wildcard: 2
                            }
                        })
                    if kinds.contains(2) { throw fail("'*' cannot be combined with other selections", at: start) }
                    if kinds.count > 1 { throw fail("names and indices cannot be mixed in one step", at: start) }
                }
                skipSpaces()
                guard index < bytes.count else { throw fail("the '[' at character \(open + 1) is not closed") }
                switch bytes[index] {
                case UInt8(ascii: ","):
                    index += 1
                case UInt8(ascii: "]"):
                    index += 1
                    return selectors
                default:
                    throw fail("expected ',' or ']'")
                }
            }
        }

        mutating func parseQuotedName() throws(ServalError) -> String {
            let quote = bytes[index]
            let open = index
            index += 1
            var name: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                if byte == quote {
                    index += 1
                    return String(decoding: name, as: UTF8.self)
                }
                if byte == UInt8(ascii: "\\"), index + 1 < bytes.count {
                    name.append(bytes[index + 1])
                    index += 2
                } else {
                    name.append(byte)
                    index += 1
                }
            }
            throw fail("the quoted name at character \(open + 1) is not closed", at: open)
        }

        mutating func parseIndexOrSlice() throws(ServalError) -> Selector {
            let start = try parseInteger()
            skipSpaces()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                guard let start else { throw fail("expected an index") }
                return .index(start)
            }
            index += 1
            skipSpaces()
            let end = try parseInteger()
            skipSpaces()
            if index < bytes.count, bytes[index] == UInt8(ascii: ":") {
                throw fail("slice steps [a:b:c] are not supported")
            }
            return .slice(start: start, end: end)
        }

        /// An optional integer: `-`? digits (at most 9).
        mutating func parseInteger() throws(ServalError) -> Int? {
            let start = index
            var negative = false
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
                negative = true
                index += 1
            }
            var value = 0
            var digits = 0
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                value = value * 10 + Int(bytes[index] - UInt8(ascii: "0"))
                digits += 1
                index += 1
                if digits > 9 { throw fail("the index is too large", at: start) }
            }
            if digits == 0 {
                if negative { throw fail("expected digits after '-'", at: start) }
                return nil
            }
            return negative ? -value : value
        }
    }
}
