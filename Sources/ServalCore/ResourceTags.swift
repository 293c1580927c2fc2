/// A tag on a model, endpoint config, endpoint or transform job: a key and a value, as SageMaker's `AddTags`,
/// `ListTags` and `DeleteTags` and the `Tags` of its create calls carry them.
public struct ResourceTag: Codable, Sendable, Equatable {
    /// 1 to 128 characters, unique per resource; `aws:` begins only AWS's own tags.
    public var key: String
    /// 0 to 256 characters.
    public var value: String

    /// Creates a tag.
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// A kind of resource that carries tags, spelled as in its ARN (`arn:aws:sagemaker:REGION:ACCOUNT:KIND/NAME`).
public enum TaggedResourceKind: String, Sendable, CaseIterable {
    case model
    case endpointConfig = "endpoint-config"
    case endpoint
    case transformJob = "transform-job"

    /// The kind as SageMaker's messages name it (`Could not find endpoint configuration ...`).
    public var displayName: String {
        switch self {
        case .model: "model"
        case .endpointConfig: "endpoint configuration"
        case .endpoint: "endpoint"
        case .transformJob: "transform job"
        }
    }
}

/// One resource that carries tags: its kind and its exact name.
public struct TaggedResource: Sendable, Hashable {
    public var kind: TaggedResourceKind
    public var name: String

    /// Names a resource.
    public init(_ kind: TaggedResourceKind, _ name: String) {
        self.kind = kind
        self.name = name
    }
}

/// SageMaker's rules for tags, checked wherever tags come in.
public enum ResourceTags {
    /// The most tags one resource carries.
    public static let maxPerResource = 50
    /// The length of a key, in characters.
    public static let keyLength = 1...128
    /// The length of a value, in characters.
    public static let valueLength = 0...256

    /// Checks tags given to a create call or to `AddTags`: at most 50, each key and value of the allowed length and
    /// characters, no key twice, none beginning with `aws:`.
    ///
    /// - Parameter field: the request field, e.g. `Tags`, named in the message as `Tags[2].Key`.
    public static func validate(_ tags: [ResourceTag], field: String) throws(ServalError) {
        guard tags.count <= maxPerResource else {
            throw .invalid(field, "has \(tags.count) tags; a resource carries at most \(maxPerResource).")
        }
        var seen = Set<String>()
        for (index, tag) in tags.enumerated() {
            try validate(key: tag.key, field: "\(field)[\(index)].Key")
            try validate(text: tag.value, field: "\(field)[\(index)].Value", length: valueLength)
            guard seen.insert(tag.key).inserted else {
                throw .invalid("\(field)[\(index)].Key", "\"\(tag.key)\" is given twice; tag keys are unique per resource.")
            }
        }
    }

    /// Checks the keys given to `DeleteTags`: 1 to 50, each a valid key not beginning with `aws:`.
    public static func validate(keys: [String], field: String) throws(ServalError) {
        guard (1...maxPerResource).contains(keys.count) else {
            throw .invalid(field, "has \(keys.count) keys; give 1 to \(maxPerResource).")
        }
        for (index, key) in keys.enumerated() {
            try validate(key: key, field: "\(field)[\(index)]")
        }
    }

    /// The tags after adding `new` to `existing`: a key it has takes the new value in its place, other keys come
    /// after, in order.
    ///
    /// - Throws: `.validationError` when the resource would carry more than ``maxPerResource`` tags.
    public static func merging(_ existing: [ResourceTag], _ new: [ResourceTag]) throws(ServalError) -> [ResourceTag] {
        var merged = existing
        for tag in new {
            if let index = merged.firstIndex(where: { $0.key == tag.key }) {
                merged[index].value = tag.value
            } else {
                merged.append(tag)
            }
        }
        guard merged.count <= maxPerResource else {
            throw ServalError(
                .validationError,
                "Tags: the resource would carry \(merged.count) tags; the limit is \(maxPerResource). Delete some first (DeleteTags).")
        }
        return merged
    }

    private static func validate(key: String, field: String) throws(ServalError) {
        try validate(text: key, field: field, length: keyLength)
        guard !key.lowercased().hasPrefix("aws:") else {
            throw .invalid(field, "\"\(key)\" begins with aws:, which is reserved for AWS's own tags; choose another key.")
        }
    }

    /// Checks a key or value against SageMaker's length and its pattern `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`.
    private static func validate(text: String, field: String, length: ClosedRange<Int>) throws(ServalError) {
        let count = text.unicodeScalars.count
        guard length.contains(count) else {
            throw .invalid(field, "is \(count) characters long; it must be \(length.lowerBound) to \(length.upperBound).")
        }
        if let bad = text.unicodeScalars.first(where: { !allowed($0) }) {
            throw .invalid(
                field,
                "contains \"\(bad.escaped(asASCII: true))\"; tags may hold letters, digits, spaces and _ . : / = + - @ only.")
        }
    }

    private static func allowed(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
            .decimalNumber, .letterNumber, .otherNumber,
            .spaceSeparator, .lineSeparator, .paragraphSeparator:
            return true
        default:
            return "_.:/=+-@".unicodeScalars.contains(scalar)
        }
    }
}
