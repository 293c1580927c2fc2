public import ServalCore

/// CloudWatch Logs' term filter patterns, the part of its filter syntax Serval supports.
///
/// Terms are separated by spaces; a term in double quotes may hold spaces and punctuation (`\"` and `\\` inside
/// are a quote and a backslash). A message matches when it contains every plain term, at least one of the terms
/// written `?term` (when there are any), and none written `-term`. Terms match anywhere in the message and are
/// case-sensitive. An empty pattern matches every message. JSON (`{ $.level = "error" }`), space-delimited
/// (`[ip, user, ...]`) and regular-expression (`%...%`) patterns are refused.
public struct LogFilterPattern: Sendable, Equatable {
    /// Terms every matching message contains.
    public var required: [String] = []
    /// Terms of which a matching message contains at least one, when not empty.
    public var anyOf: [String] = []
    /// Terms no matching message contains.
    public var excluded: [String] = []

    /// The longest pattern, CloudWatch's limit.
    public static let maxLength = 1024

    /// A pattern that matches everything.
    public init() {}

    /// Parses a pattern.
    ///
    /// - Throws: ``ServalError/Code/validationError`` naming `filterPattern` for syntax Serval does not support.
    public init(parsing text: String) throws(ServalError) {
        guard text.utf8.count <= Self.maxLength else {
            throw .invalid("filterPattern", "is \(text.utf8.count) bytes long; the limit is \(Self.maxLength).")
        }
        var characters = Substring(text)
        func skipSpaces() { characters = characters.drop { $0 == " " || $0 == "\t" } }
        skipSpaces()
        if let first = characters.first, first == "{" || first == "[" || first == "%" {
            throw .invalid(
                "filterPattern",
                "Serval supports term patterns only (ERROR, \"two words\", ?ERROR ?WARN, -DEBUG); JSON, space-delimited and regular-expression patterns are not supported.")
        }
        while !characters.isEmpty {
            var kind = 0  // 0 required, 1 any of, 2 excluded
            if characters.first == "?" {
                kind = 1
                characters.removeFirst()
            } else if characters.first == "-", characters.count > 1 {
                kind = 2
                characters.removeFirst()
            }
            var term = ""
            if characters.first == "\"" {
                characters.removeFirst()
                var closed = false
                while let character = characters.popFirst() {
                    if character == "\\", let next = characters.popFirst() {
                        term.append(next)
                    } else if character == "\"" {
                        closed = true
                        break
                    } else {
                        term.append(character)
                    }
                }
                guard closed else { throw .invalid("filterPattern", "has a quoted term without its closing quote.") }
            } else {
                let end = characters.firstIndex { $0 == " " || $0 == "\t" } ?? characters.endIndex
                term = String(characters[..<end])
                characters = characters[end...]
            }
            if !term.isEmpty {
                switch kind {
                case 1: anyOf.append(term)
                case 2: excluded.append(term)
                default: required.append(term)
                }
            }
            skipSpaces()
        }
    }

    /// Whether the pattern matches every message.
    public var matchesEverything: Bool { required.isEmpty && anyOf.isEmpty && excluded.isEmpty }

    /// The pattern as an SQL condition on the column `message`, and its arguments (SQLite's `instr`, which compares
    /// bytes, so case-sensitive).
    var sql: (condition: String, arguments: [String]) {
        var conditions: [String] = []
        var arguments: [String] = []
        for term in required {
            conditions.append("instr(message, ?) > 0")
            arguments.append(term)
        }
        if !anyOf.isEmpty {
            conditions.append("(" + anyOf.map { _ in "instr(message, ?) > 0" }.joined(separator: " OR ") + ")")
            arguments += anyOf
        }
        for term in excluded {
            conditions.append("instr(message, ?) = 0")
            arguments.append(term)
        }
        return (conditions.isEmpty ? "1" : conditions.joined(separator: " AND "), arguments)
    }
}
