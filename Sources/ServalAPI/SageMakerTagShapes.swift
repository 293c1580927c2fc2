public import ServalCore

// The shapes of SageMaker's tag operations (AddTags, ListTags, DeleteTags) and the ARNs they name.

extension SageMakerTag {
    /// The tag, with an absent value as empty (botocore always sends one).
    public var resourceTag: ResourceTag { ResourceTag(key: Key, value: Value ?? "") }
}

extension [SageMakerTag] {
    /// The tags, checked by SageMaker's rules (``ServalCore/ResourceTags/validate(_:field:)``).
    public func validated(field: String = "Tags") throws(ServalError) -> [ResourceTag] {
        let tags = map(\.resourceTag)
        try ResourceTags.validate(tags, field: field)
        return tags
    }
}

extension SageMakerARN {
    /// The kind and name an ARN of this account names, `arn:aws:sagemaker:REGION:ACCOUNT:KIND/NAME` (any region:
    /// Serval's resources are the same in every region, and a client's region only shows in the ARNs it gets).
    /// The name is as the ARN shows it, in lowercase.
    ///
    /// - Throws: ``SageMakerError`` `ValidationException` for a malformed ARN, another service's or account's, or
    ///   a kind of resource Serval does not have.
    public func resource(_ arn: String, field: String = "ResourceArn") throws(SageMakerError) -> (kind: TaggedResourceKind, name: String) {
        guard arn.utf8.count <= 256 else {
            throw SageMakerError(.validation, "\(field) is \(arn.utf8.count) characters long; the limit is 256.")
        }
        let parts = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "arn", parts[1].hasPrefix("aws"), parts[2] == "sagemaker",
            parts[3].isEmpty || Self.isRegion(parts[3]), Self.isAccount(String(parts[4]))
        else {
            throw SageMakerError(
                .validation,
                "\(field) \"\(arn)\" is not a SageMaker ARN (arn:aws:sagemaker:REGION:ACCOUNT:KIND/NAME); use the ARN a Create or Describe call returned.")
        }
        let resource = parts[5]
        guard let slash = resource.firstIndex(of: "/"),
            let kind = TaggedResourceKind(rawValue: String(resource[..<slash]))
        else {
            let kinds = TaggedResourceKind.allCases.map(\.rawValue).joined(separator: ", ")
            throw SageMakerError(
                .validation,
                "\(field) \"\(arn)\" names no resource Serval has; Serval tags \(kinds) (e.g. arn:aws:sagemaker:REGION:ACCOUNT:endpoint/NAME).")
        }
        let name = String(resource[resource.index(after: slash)...])
        guard parts[4] == account, (try? ResourceName.validate(name, field: field)) != nil else {
            throw SageMakerError(.validation, "Could not find \(kind.displayName) \"\(arn)\".")
        }
        return (kind, name)
    }
}

/// `AddTags`'s input.
public struct AddTagsInput: Codable, Sendable, Equatable {
    public var ResourceArn: String
    public var Tags: [SageMakerTag]
}

/// `AddTags`'s output: the resource's tags after the call.
public struct AddTagsOutput: Codable, Sendable, Equatable {
    public var Tags: [SageMakerTag]

    /// The output for a resource's tags.
    public init(_ tags: [ResourceTag]) {
        Tags = tags.map { SageMakerTag(Key: $0.key, Value: $0.value) }
    }
}

/// `ListTags`'s input. A resource carries at most 50 tags and `MaxResults` is at least 50, so every list is one page.
public struct ListTagsInput: Codable, Sendable, Equatable {
    public var ResourceArn: String
    public var NextToken: String?
    public var MaxResults: Int?

    /// Checks `MaxResults` (at least 50) and `NextToken` (Serval issues none).
    public func validate() throws(ServalError) {
        try SageMakerCheck.range(MaxResults, "MaxResults", 50...Int.max)
        guard NextToken?.isEmpty ?? true else {
            throw .invalid("NextToken", "is not one Serval issued: a resource's tags (at most 50) come in one page. Call ListTags without it.")
        }
    }
}

/// `ListTags`'s output.
public typealias ListTagsOutput = AddTagsOutput

/// `DeleteTags`'s input.
public struct DeleteTagsInput: Codable, Sendable, Equatable {
    public var ResourceArn: String
    public var TagKeys: [String]
}
