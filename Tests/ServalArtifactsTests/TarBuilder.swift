import Foundation

/// Builds tar archives header by header, so that tests control every field — including the ones a real tar
/// tool would never write.
struct TarBuilder {
    /// The tar entry types the tests use.
    enum EntryType: Character {
        case file = "0"
        case hardLink = "1"
        case symlink = "2"
        case characterDevice = "3"
        case blockDevice = "4"
        case directory = "5"
        case fifo = "6"
        case contiguousFile = "7"
        case gnuLongName = "L"
        case gnuLongLink = "K"
        case pax = "x"
        case paxGlobal = "g"

        var byte: UInt8 { rawValue.asciiValue! }
    }

    private(set) var bytes: [UInt8] = []

    // MARK: Entries

    /// A regular file.
    mutating func file(_ name: String, _ contents: String, mode: Int = 0o644) {
        file(name, Array(contents.utf8), mode: mode)
    }

    /// A regular file.
    mutating func file(_ name: String, _ contents: [UInt8], mode: Int = 0o644, type: EntryType = .file) {
        entry(name: name, type: type, mode: mode, contents: contents)
    }

    /// A directory.
    mutating func directory(_ name: String) {
        entry(name: name.hasSuffix("/") ? name : name + "/", type: .directory, mode: 0o755)
    }

    /// A symbolic link.
    mutating func symlink(_ name: String, to target: String) {
        entry(name: name, type: .symlink, mode: 0o777, linkName: target)
    }

    /// A hard link.
    mutating func hardLink(_ name: String, to target: String) {
        entry(name: name, type: .hardLink, linkName: target)
    }

    /// A GNU long-name record (and, for links, a long-link record) followed by the entry itself, whose header
    /// holds only the first 100 bytes of the name, as GNU tar writes it.
    mutating func gnuLongEntry(_ name: String, type: EntryType = .file, contents: [UInt8] = [], linkName: String = "") {
        record(type: .gnuLongName, Array(name.utf8) + [0])
        if !linkName.isEmpty { record(type: .gnuLongLink, Array(linkName.utf8) + [0]) }
        entry(
            name: String(decoding: name.utf8.prefix(100), as: UTF8.self), type: type, contents: contents,
            linkName: String(decoding: linkName.utf8.prefix(100), as: UTF8.self))
    }

    /// A pax extended header with `records` followed by the entry itself, whose header holds a placeholder name.
    mutating func paxEntry(
        _ records: [(key: String, value: String)], type: EntryType = .file, contents: [UInt8] = [],
        headerName: String = "PaxHeaders/placeholder"
    ) {
        record(type: .pax, records.flatMap { Self.paxRecord(key: $0.key, value: $0.value) })
        entry(name: headerName, type: type, contents: contents)
    }

    /// A header and its padded data, as given.
    mutating func entry(
        name: String, type: EntryType, mode: Int = 0o644, contents: [UInt8] = [], linkName: String = "",
        prefix: String = "", declaredSize: Int? = nil
    ) {
        bytes += Self.header(
            name: name, type: type.byte, size: declaredSize ?? contents.count, mode: mode, linkName: linkName,
            prefix: prefix)
        append(padded: contents)
    }

    /// A record entry (long name, pax header) with `data` as its contents.
    mutating func record(type: EntryType, _ data: [UInt8]) {
        entry(name: type == .pax ? "PaxHeaders/record" : "././@LongLink", type: type, contents: data)
    }

    /// Raw bytes.
    mutating func raw(_ data: [UInt8]) {
        bytes += data
    }

    /// Data padded with zeros to the next 512-byte block.
    mutating func append(padded data: [UInt8]) {
        bytes += data
        bytes += [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
    }

    /// The archive with its two end-of-archive blocks.
    var archive: [UInt8] { bytes + [UInt8](repeating: 0, count: 1024) }

    // MARK: Headers

    /// A ustar header with a correct checksum. `sizeField` replaces the octal size when set (base-256 tests).
    static func header(
        name: String, type: UInt8, size: Int = 0, mode: Int = 0o644, linkName: String = "", prefix: String = "",
        sizeField: [UInt8]? = nil
    ) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ field: some Collection<UInt8>, at offset: Int, width: Int) {
            precondition(field.count <= width, "field of \(field.count) bytes in \(width)")
            for (index, byte) in field.enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(name.utf8, at: 0, width: 100)
        put(octal(mode, width: 8), at: 100, width: 8)
        put(octal(1000, width: 8), at: 108, width: 8)
        put(octal(1000, width: 8), at: 116, width: 8)
        put(sizeField ?? octal(size, width: 12), at: 124, width: 12)
        put(octal(1_700_000_000, width: 12), at: 136, width: 12)
        header[156] = type
        put(linkName.utf8, at: 157, width: 100)
        put("ustar\u{0}00".utf8, at: 257, width: 8)
        put("serval".utf8, at: 265, width: 32)
        put("serval".utf8, at: 297, width: 32)
        put(prefix.utf8, at: 345, width: 155)
        return withChecksum(header)
    }

    /// `header` with its checksum field recomputed.
    static func withChecksum(_ header: [UInt8]) -> [UInt8] {
        var header = header
        for index in 148..<156 { header[index] = UInt8(ascii: " ") }
        let sum = header.reduce(0) { $0 + Int($1) }
        let digits = Array(String(sum, radix: 8).utf8)
        let field = [UInt8](repeating: UInt8(ascii: "0"), count: 6 - digits.count) + digits + [0, UInt8(ascii: " ")]
        for (index, byte) in field.enumerated() { header[148 + index] = byte }
        return header
    }

    /// One pax record: `"<length> <key>=<value>\n"`, where the length counts the whole record.
    static func paxRecord(key: String, value: String) -> [UInt8] {
        let body = Array(" \(key)=\(value)\n".utf8)
        var length = body.count + 1
        while String(length).utf8.count + body.count != length { length += 1 }
        return Array(String(length).utf8) + body
    }
}

// MARK: Tools

/// Errors of the test helpers themselves.
struct HelperFailure: Error, CustomStringConvertible {
    var description: String
}

/// Compresses `data` with the system's gzip.
func gzip(_ data: [UInt8]) throws -> [UInt8] {
    let input = NSTemporaryDirectory() + "serval-gzip-" + UUID().uuidString
    guard FileManager.default.createFile(atPath: input, contents: Data(data)) else {
        throw HelperFailure(description: "cannot write \(input)")
    }
    defer { try? FileManager.default.removeItem(atPath: input) }
    return try run("/bin/gzip", ["-c", "-n", input])
}

/// Runs a tool and returns its standard output; throws when it fails.
@discardableResult
func run(_ tool: String, _ arguments: [String], in directory: String? = nil) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw HelperFailure(description: "\(tool) \(arguments) exited with \(process.terminationStatus)")
    }
    return Array(data)
}
