import Foundation
import HTTPTypes
import NIOCore
import ServalObjects

/// Object tags as S3 takes them: a `<Tagging>` body (PutObjectTagging) or an `x-amz-tagging` header (PutObject,
/// CreateMultipartUpload, CopyObject), checked against S3's limits.
enum S3Tagging {
    /// The most tags an object can have.
    static let maxTags = 10
    /// The longest key, in Unicode characters.
    static let maxKeyLength = 128
    /// The longest value, in Unicode characters.
    static let maxValueLength = 256

    /// Parses and checks a `<Tagging><TagSet><Tag><Key>…</Key><Value>…</Value></Tag>…</TagSet></Tagging>` body.
    static func parse(body: ByteBuffer) throws -> [ObjectTag] {
        let root = try S3XML.parse(body)
        guard root.name == "Tagging", let set = root.child("TagSet") else {
            throw S3XML.MalformedXML(reason: "expected <Tagging><TagSet>…</TagSet></Tagging>")
        }
        var tags: [ObjectTag] = []
        for tag in set.children {
            guard tag.name == "Tag", let key = tag.child("Key") else {
                throw S3XML.MalformedXML(reason: "every <Tag> needs a <Key>")
            }
            tags.append(ObjectTag(key: key.text, value: tag.child("Value")?.text ?? ""))
        }
        try validate(tags)
        return tags
    }

    /// Parses and checks an `x-amz-tagging` header: URL query encoding, `key1=value1&key2=value2`.
    static func parse(header: String) throws(S3Error) -> [ObjectTag] {
        var tags: [ObjectTag] = []
        for pair in header.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decoded(_ text: Substring) throws(S3Error) -> String {
                guard let value = text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding else {
                    throw S3Error("InvalidArgument", .badRequest, "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
                }
                return value
            }
            tags.append(ObjectTag(key: try decoded(parts[0]), value: parts.count > 1 ? try decoded(parts[1]) : ""))
        }
        try validate(tags)
        return tags
    }

    /// Checks S3's limits: at most 10 tags with distinct keys of 1–128 characters (not starting with `aws:`) and
    /// values of up to 256, made of letters, digits, spaces and `+ - = . _ : / @`.
    static func validate(_ tags: [ObjectTag]) throws(S3Error) {
        guard tags.count <= maxTags else { throw invalidTag("Object tags cannot be greater than \(maxTags).") }
        var keys = Set<String>()
        for tag in tags {
            let keyLength = tag.key.unicodeScalars.count
            guard (1...maxKeyLength).contains(keyLength), allowed(tag.key) else {
                throw invalidTag("The TagKey you have provided is invalid: use 1 to \(maxKeyLength) letters, digits, spaces and + - = . _ : / @.")
            }
            guard !tag.key.hasPrefix("aws:") else { throw invalidTag("Your TagKey cannot be prefixed with aws:.") }
            guard tag.value.unicodeScalars.count <= maxValueLength, allowed(tag.value) else {
                throw invalidTag("The TagValue you have provided is invalid: use up to \(maxValueLength) letters, digits, spaces and + - = . _ : / @.")
            }
            guard keys.insert(tag.key).inserted else { throw invalidTag("Cannot provide multiple Tags with the same key.") }
        }
    }

    private static func allowed(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { scalar in
            scalar.properties.isAlphabetic || scalar.properties.numericType != nil || scalar == " "
                || "+-=._:/@".unicodeScalars.contains(scalar)
        }
    }

    private static func invalidTag(_ message: String) -> S3Error { S3Error("InvalidTag", .badRequest, message) }

    /// The `<Tagging>` document of GetObjectTagging.
    static func document(_ tags: [ObjectTag]) -> S3XML.Writer {
        var xml = S3XML.Writer()
        xml.openRoot("Tagging")
        xml.open("TagSet")
        for tag in tags {
            xml.open("Tag")
            xml.element("Key", tag.key)
            xml.element("Value", tag.value)
            xml.close("Tag")
        }
        xml.close("TagSet")
        xml.close("Tagging")
        return xml
    }
}
