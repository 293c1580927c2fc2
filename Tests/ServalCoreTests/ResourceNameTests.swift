import ServalCore
import Testing

@Suite("ResourceName")
struct ResourceNameTests {
    @Test(
        "names matching [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62} pass",
        arguments: [
            "a", "Z", "7", "model", "my-model-2", "A--b", "a-b-c-d", "x1y2z3", "UPPER-lower-09",
            String(repeating: "a", count: 63), "a" + String(repeating: "-", count: 61) + "b",
        ])
    func valid(name: String) {
        #expect(failure { try ResourceName.validate(name, field: "name") } == nil)
    }

    @Test(
        "other names fail with a validation error naming the field",
        arguments: [
            "-a", "a-", "-", "a_b", "a.b", "a b", " a", "a ", "a/b", "ünïcode", "modèle", "a\u{0}b", "🐆", "a\nb",
            "a+b", "..", "a--",
        ])
    func invalid(name: String) {
        expectInvalid(field: "endpointName", mentioning: "letters, digits and hyphens") {
            try ResourceName.validate(name, field: "endpointName")
        }
    }

    @Test("an empty name fails")
    func empty() {
        expectInvalid(field: "name", mentioning: "must not be empty") { try ResourceName.validate("", field: "name") }
    }

    @Test("64 characters is one too many")
    func tooLong() {
        expectInvalid(field: "name", mentioning: "64 characters long; the limit is 63") {
            try ResourceName.validate(String(repeating: "b", count: 64), field: "name")
        }
    }

    @Test("the length limit counts bytes, so multi-byte characters cannot slip past it")
    func lengthInBytes() {
        // 32 two-byte characters are 64 bytes: refused for length before the character check.
        expectInvalid(field: "name", mentioning: "limit is 63") {
            try ResourceName.validate(String(repeating: "é", count: 32), field: "name")
        }
    }
}

@Suite("ServalError")
struct ServalErrorTests {
    @Test("invalid names the field first")
    func invalidMessage() {
        let error = ServalError.invalid("variants[0].weight", "must be positive.")
        #expect(error.code == .validationError)
        #expect(error.message == "variants[0].weight: must be positive.")
        #expect(error.description == "ValidationError: variants[0].weight: must be positive.")
    }

    @Test("notFound names the kind and the name, with an optional hint")
    func notFoundMessage() {
        #expect(ServalError.notFound("Model", "m1").message == #"Model "m1" does not exist."#)
        #expect(ServalError.notFound("Model", "m1", hint: "Create it first.").message == #"Model "m1" does not exist. Create it first."#)
        #expect(ServalError.notFound("Endpoint", "e").code == .notFound)
    }

    @Test("codes have SageMaker's stable names")
    func codes() {
        #expect(ServalError.Code.modelNotReady.rawValue == "ModelNotReadyException")
        #expect(ServalError.Code.validationError.rawValue == "ValidationError")
        #expect(Set(ServalError.Code.allCases.map(\.rawValue)).count == ServalError.Code.allCases.count)
    }
}
