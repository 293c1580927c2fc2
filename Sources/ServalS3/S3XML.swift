public import NIOCore

/// The XML S3 speaks: a writer for responses and a small, strict reader for the request bodies S3 takes
/// (CompleteMultipartUpload, Delete, Tagging, AccessControlPolicy).
public enum S3XML {
    /// S3's namespace.
    public static let namespace = "http://s3.amazonaws.com/doc/2006-03-01/"

    /// Escapes text for element content and attribute values.
    public static func escape(_ text: some StringProtocol) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&apos;"
            case "\r": result += "&#13;"
            default:
                // XML 1.0 cannot carry other control characters even escaped; S3 keys never hold them here.
                if scalar.value < 0x20 && scalar != "\n" && scalar != "\t" { continue }
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// Builds a document.
    public struct Writer: Sendable {
        /// The text so far.
        public private(set) var text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

        /// Starts a document.
        public init() {}

        /// Opens the root element, in S3's namespace.
        public mutating func openRoot(_ name: String) {
            text += "<\(name) xmlns=\"\(S3XML.namespace)\">"
        }

        /// Writes the root element, in S3's namespace, with only text inside.
        public mutating func root(_ name: String, text value: String) {
            text += "<\(name) xmlns=\"\(S3XML.namespace)\">\(S3XML.escape(value))</\(name)>"
        }

        /// Opens an element.
        public mutating func open(_ name: String) {
            text += "<\(name)>"
        }

        /// Opens an element with attributes (values escaped).
        public mutating func open(_ name: String, attributes: [(name: String, value: String)]) {
            text += "<\(name)" + attributes.map { " \($0.name)=\"\(S3XML.escape($0.value))\"" }.joined() + ">"
        }

        /// Closes an element.
        public mutating func close(_ name: String) {
            text += "</\(name)>"
        }

        /// Writes `<name>escaped value</name>`.
        public mutating func element(_ name: String, _ value: some StringProtocol) {
            text += "<\(name)>\(S3XML.escape(value))</\(name)>"
        }

        /// The document as a buffer.
        public var buffer: ByteBuffer { ByteBuffer(string: text) }
    }

    /// An element read by ``parse(_:)``: its name (without namespace prefix), its child elements and its text.
    public struct Element: Sendable, Equatable {
        /// The local name.
        public var name: String
        /// The child elements, in order.
        public var children: [Element]
        /// The text directly inside the element, entities decoded.
        public var text: String

        /// The first child with this name.
        public func child(_ name: String) -> Element? { children.first { $0.name == name } }
    }

    /// Why a body is not XML S3 would accept (S3's `MalformedXML`).
    public struct MalformedXML: Error, Equatable, Sendable {
        /// What is wrong.
        public var reason: String
    }

    /// Parses a small document: a prolog, comments, elements with (ignored) attributes, text with the predefined
    /// and numeric entities, and CDATA. Anything else — DTDs, unbalanced tags, text outside the root — is refused.
    public static func parse(_ body: ByteBuffer) throws(MalformedXML) -> Element {
        var parser = Parser(bytes: Array(body.readableBytesView))
        return try parser.document()
    }

    private struct Parser {
        let bytes: [UInt8]
        var index = 0
        var depth = 0

        init(bytes: [UInt8]) {
            self.bytes = bytes
        }

        func fail(_ reason: String) -> MalformedXML { MalformedXML(reason: reason) }

        func starts(with text: String) -> Bool {
            let utf8 = Array(text.utf8)
            return index + utf8.count <= bytes.count && Array(bytes[index..<index + utf8.count]) == utf8
        }

        mutating func skip(past text: String) throws(MalformedXML) {
            let utf8 = Array(text.utf8)
            while index + utf8.count <= bytes.count {
                if Array(bytes[index..<index + utf8.count]) == utf8 {
                    index += utf8.count
                    return
                }
                index += 1
            }
            throw fail("\(text) is missing")
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        /// Skips whitespace, comments and processing instructions.
        mutating func skipMisc() throws(MalformedXML) {
            while true {
                skipSpace()
                if starts(with: "<?") {
                    try skip(past: "?>")
                } else if starts(with: "<!--") {
                    try skip(past: "-->")
                } else {
                    return
                }
            }
        }

        mutating func document() throws(MalformedXML) -> Element {
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
            try skipMisc()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "<") else { throw fail("the document has no root element") }
            let root = try element()
            try skipMisc()
            guard index == bytes.count else { throw fail("content follows the root element") }
            return root
        }

        mutating func name() throws(MalformedXML) -> String {
            let start = index
            while index < bytes.count, !([0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: ">"), UInt8(ascii: "/"), UInt8(ascii: "=")].contains(bytes[index])) {
                index += 1
            }
            guard index > start else { throw fail("a tag has no name") }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }

        static func localName(_ name: String) -> String {
            name.split(separator: ":").last.map(String.init) ?? name
        }

        mutating func element() throws(MalformedXML) -> Element {
            depth += 1
            defer { depth -= 1 }
            guard depth <= 32 else { throw fail("elements nest too deeply") }
            index += 1  // <
            let qualified = try name()
            // Attributes: name="value" or name='value', ignored.
            while true {
                skipSpace()
                guard index < bytes.count else { throw fail("<\(qualified)> is not closed") }
                if bytes[index] == UInt8(ascii: "/") {
                    guard index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: ">") else { throw fail("a stray / in <\(qualified)>") }
                    index += 2
                    return Element(name: Self.localName(qualified), children: [], text: "")
                }
                if bytes[index] == UInt8(ascii: ">") {
                    index += 1
                    break
                }
                _ = try name()
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "=") else { throw fail("an attribute of <\(qualified)> has no value") }
                index += 1
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") || bytes[index] == UInt8(ascii: "'") else {
                    throw fail("an attribute value of <\(qualified)> is not quoted")
                }
                let quote = bytes[index]
                index += 1
                while index < bytes.count, bytes[index] != quote { index += 1 }
                guard index < bytes.count else { throw fail("an attribute value of <\(qualified)> is not closed") }
                index += 1
            }
            var children: [Element] = []
            var text: [UInt8] = []
            while true {
                guard index < bytes.count else { throw fail("<\(qualified)> is not closed") }
                let byte = bytes[index]
                if byte == UInt8(ascii: "<") {
                    if starts(with: "</") {
                        index += 2
                        let closing = try name()
                        skipSpace()
                        guard closing == qualified, index < bytes.count, bytes[index] == UInt8(ascii: ">") else {
                            throw fail("<\(qualified)> is closed by </\(closing)>")
                        }
                        index += 1
                        return Element(name: Self.localName(qualified), children: children, text: String(decoding: text, as: UTF8.self))
                    } else if starts(with: "<!--") {
                        try skip(past: "-->")
                    } else if starts(with: "<![CDATA[") {
                        index += 9
                        let start = index
                        try skip(past: "]]>")
                        text += bytes[start..<index - 3]
                    } else if starts(with: "<!") || starts(with: "<?") {
                        throw fail("declarations are not accepted")
                    } else {
                        children.append(try element())
                    }
                } else if byte == UInt8(ascii: "&") {
                    text += try entity()
                } else {
                    text.append(byte)
                    index += 1
                }
            }
        }

        mutating func entity() throws(MalformedXML) -> [UInt8] {
            let start = index + 1
            guard let end = bytes[start...].prefix(12).firstIndex(of: UInt8(ascii: ";")) else {
                throw fail("an & is not an entity")
            }
            let name = String(decoding: bytes[start..<end], as: UTF8.self)
            index = end + 1
            switch name {
            case "amp": return Array("&".utf8)
            case "lt": return Array("<".utf8)
            case "gt": return Array(">".utf8)
            case "quot": return Array("\"".utf8)
            case "apos": return Array("'".utf8)
            default:
                var value: UInt32?
                if name.hasPrefix("#x") {
                    value = UInt32(name.dropFirst(2), radix: 16)
                } else if name.hasPrefix("#") {
                    value = UInt32(name.dropFirst(), radix: 10)
                }
                guard let value, let scalar = Unicode.Scalar(value) else { throw fail("&\(name); is not an entity") }
                return Array(String(Character(scalar)).utf8)
            }
        }
    }
}

/// The body of CompleteMultipartUpload: the parts to join, as the client lists them.
public struct CompleteMultipartUploadBody: Equatable, Sendable {
    /// Part numbers and ETags (quotes kept as sent), in the client's order.
    public var parts: [Part]

    /// One part.
    public struct Part: Equatable, Sendable {
        /// The part number.
        public var number: Int
        /// The ETag the part's upload returned.
        public var etag: String

        /// Creates a part reference.
        public init(number: Int, etag: String) {
            self.number = number
            self.etag = etag
        }
    }

    /// Reads the body.
    public init(_ body: ByteBuffer) throws(S3XML.MalformedXML) {
        let root = try S3XML.parse(body)
        guard root.name == "CompleteMultipartUpload" else {
            throw S3XML.MalformedXML(reason: "the root element must be CompleteMultipartUpload")
        }
        parts = []
        for element in root.children where element.name == "Part" {
            guard let number = element.child("PartNumber").flatMap({ Int($0.text.trimmed) }),
                let etag = element.child("ETag")?.text.trimmed
            else { throw S3XML.MalformedXML(reason: "each Part needs a PartNumber and an ETag") }
            parts.append(Part(number: number, etag: etag))
        }
    }
}

/// The body of DeleteObjects: the keys to delete.
public struct DeleteObjectsBody: Equatable, Sendable {
    /// Whether to report only failures.
    public var quiet: Bool
    /// The keys, in order.
    public var keys: [String]

    /// Reads the body.
    public init(_ body: ByteBuffer) throws(S3XML.MalformedXML) {
        let root = try S3XML.parse(body)
        guard root.name == "Delete" else { throw S3XML.MalformedXML(reason: "the root element must be Delete") }
        quiet = root.child("Quiet")?.text.trimmed == "true"
        keys = []
        for element in root.children where element.name == "Object" {
            guard let key = element.child("Key")?.text else { throw S3XML.MalformedXML(reason: "each Object needs a Key") }
            keys.append(key)
        }
        guard keys.count <= 1000 else { throw S3XML.MalformedXML(reason: "at most 1000 keys can be deleted at once") }
    }
}

extension String {
    var trimmed: String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
