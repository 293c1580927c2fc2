/// Validation of resource names, shared by every resource kind.
public enum ResourceName {
    /// The longest name a model, endpoint config, endpoint or variant may have.
    public static let maxLength = 63

    /// Checks `name` against SageMaker's pattern `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`.
    ///
    /// - Parameter field: the request field that held the name, used in the error message.
    /// - Throws: ``ServalError/Code/validationError`` naming the field and the rule.
    public static func validate(_ name: String, field: String) throws(ServalError) {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty else {
            throw .invalid(field, "must not be empty.")
        }
        guard bytes.count <= maxLength else {
            throw .invalid(field, "\"\(name)\" is \(bytes.count) characters long; the limit is \(maxLength).")
        }
        func isAlphanumeric(_ byte: UInt8) -> Bool {
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
        }
        let valid =
            isAlphanumeric(bytes.first!) && isAlphanumeric(bytes.last!)
            && bytes.allSatisfy { isAlphanumeric($0) || $0 == 0x2D }
        guard valid else {
            throw .invalid(
                field,
                "\"\(name)\" is not a valid name: use letters, digits and hyphens, starting and ending with a letter or digit."
            )
        }
    }
}
