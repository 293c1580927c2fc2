/// The address of one object in Serval's object store: a bucket and a key, written `s3://bucket/key`.
///
/// Bucket names follow S3's rules (3–63 characters of lowercase letters, digits, `.` and `-`, starting and ending
/// with a letter or digit). Keys are 1–1024 bytes of UTF-8 whose `/`-separated segments are neither empty nor
/// `.` or `..`, so that every key names one file under its bucket's folder and none can step out of it.
public struct ObjectLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The bucket.
    public var bucket: String
    /// The key within the bucket.
    public var key: String

    /// Creates a location after checking the bucket name and the key.
    public init(bucket: String, key: String) throws(ServalError) {
        try Self.validate(bucket: bucket)
        try Self.validate(key: key)
        self.bucket = bucket
        self.key = key
    }

    /// Parses `s3://bucket/key`.
    ///
    /// - Parameter field: the request field or header that held the URI, used in error messages.
    public init(uri: String, field: String) throws(ServalError) {
        let (bucket, key) = try Self.split(uri: uri, field: field)
        guard !key.isEmpty else {
            throw .invalid(field, "\"\(uri)\" names a bucket but no object; write s3://bucket/key.")
        }
        do {
            try self.init(bucket: bucket, key: key)
        } catch {
            throw .invalid(field, "\"\(uri)\": \(error.message)")
        }
    }

    /// `s3://bucket/key`.
    public var uri: String { "s3://\(bucket)/\(key)" }

    public var description: String { uri }

    /// Splits `s3://bucket[/prefix]` into a bucket and a (possibly empty) key or prefix, without checking the key.
    public static func split(uri: String, field: String) throws(ServalError) -> (bucket: String, key: String) {
        guard uri.hasPrefix("s3://") else {
            throw .invalid(field, "\"\(uri)\" is not an object URI; write s3://bucket/key.")
        }
        let rest = uri.dropFirst("s3://".count)
        let bucket = String(rest.prefix { $0 != "/" })
        do {
            try validate(bucket: bucket)
        } catch {
            throw .invalid(field, "\"\(uri)\": \(error.message)")
        }
        return (bucket, String(rest.dropFirst(bucket.count + 1)))
    }

    /// Checks `s3://bucket[/prefix][/]`, a place objects are written under (`<prefix>/<name>`): the bucket name
    /// follows S3's rules, and the prefix has no empty, `.` or `..` segments nor control characters and leaves
    /// room in a key for a name.
    ///
    /// - Parameter field: the setting that holds the URI, used in error messages.
    public static func validate(prefixURI uri: String, field: String) throws(ServalError) {
        let (_, prefix) = try split(uri: uri, field: field)
        guard !prefix.isEmpty else { return }
        let trimmed = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        guard (1...maxPrefixBytes).contains(trimmed.utf8.count) else {
            throw .invalid(
                field, "\"\(uri)\": the prefix must be 1 to \(maxPrefixBytes) bytes long, leaving room in the 1024-byte key for the object's name.")
        }
        do {
            try validate(key: trimmed)
        } catch {
            throw .invalid(
                field,
                "\"\(uri)\" is not a usable location: write s3://bucket/prefix, whose prefix has no empty, \".\" or \"..\" segments and no control characters.")
        }
    }

    /// The longest prefix ``validate(prefixURI:field:)`` accepts.
    public static let maxPrefixBytes = 768

    /// Checks a bucket name against S3's rules.
    public static func validate(bucket: String) throws(ServalError) {
        let bytes = Array(bucket.utf8)
        func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7A)
        }
        guard (3...63).contains(bytes.count), isLowerAlphanumeric(bytes.first!), isLowerAlphanumeric(bytes.last!),
            bytes.allSatisfy({ isLowerAlphanumeric($0) || $0 == 0x2D || $0 == 0x2E }),
            !bucket.contains("..")
        else {
            throw ServalError(
                .validationError,
                "The bucket name \"\(bucket)\" is not valid: use 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit.")
        }
        let labels = bucket.split(separator: ".", omittingEmptySubsequences: false)
        if labels.count == 4, labels.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }) {
            throw ServalError(
                .validationError, "The bucket name \"\(bucket)\" is not valid: bucket names must not be formatted as an IP address.")
        }
    }

    /// Checks an object key: 1–1024 bytes, no control characters, no empty, `.` or `..` segments.
    public static func validate(key: String) throws(ServalError) {
        let count = key.utf8.count
        guard (1...1024).contains(count) else {
            throw ServalError(.validationError, "An object key must be 1 to 1024 bytes long; this one is \(count).")
        }
        guard !key.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw ServalError(.validationError, "The object key \"\(key)\" contains control characters.")
        }
        for segment in key.split(separator: "/", omittingEmptySubsequences: false) {
            guard !segment.isEmpty, segment != ".", segment != ".." else {
                throw ServalError(
                    .validationError,
                    "The object key \"\(key)\" is not allowed: keys must not start or end with \"/\", contain \"//\", or have \".\" or \"..\" segments.")
            }
        }
    }
}
