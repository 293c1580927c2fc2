import ServalCore
import Testing

@Suite("Model.validateEnvironment")
struct ModelEnvironmentTests {
    @Test("letters, digits and underscores, not starting with a digit, pass")
    func validNames() {
        let environment = [
            "A": "1", "_": "", "_x9": "v", "SAGEMAKER_PROGRAM": "inference.py", "lower_case": "ünïcode ✓",
            "OMP_NUM_THREADS": "4", "Z0": "=", String(repeating: "K", count: 1024): String(repeating: "v", count: 1024),
        ]
        #expect(failure { try Model.validateEnvironment(environment) } == nil)
        #expect(failure { try Model.validateEnvironment([:]) } == nil)
    }

    @Test("100 variables pass, 101 fail")
    func count() {
        let hundred = Dictionary(uniqueKeysWithValues: (0..<100).map { ("VAR_\($0)", "x") })
        #expect(failure { try Model.validateEnvironment(hundred) } == nil)
        var hundredOne = hundred
        hundredOne["ONE_MORE"] = "x"
        expectInvalid(field: "environment", mentioning: "101 variables") { try Model.validateEnvironment(hundredOne) }
    }

    @Test(
        "other names fail",
        arguments: [
            "", "1A", "9", "A-B", "A B", "A.B", "A=B", "É", "NAÏVE", "A\u{0}", "$HOME", "a@b", "[x]", "a`b", "{x}",
            "x~", String(repeating: "K", count: 1025),
        ])
    func invalidNames(name: String) {
        expectInvalid(field: "environment", mentioning: "is not a valid variable name") {
            try Model.validateEnvironment([name: "value"])
        }
    }

    @Test("values longer than 1024 bytes or holding NUL fail")
    func invalidValues() {
        expectInvalid(field: "environment.BIG", mentioning: "at most 1024 bytes") {
            try Model.validateEnvironment(["BIG": String(repeating: "v", count: 1025)])
        }
        expectInvalid(field: "environment.BIG") {
            // 513 two-byte characters are 1026 bytes.
            try Model.validateEnvironment(["BIG": String(repeating: "é", count: 513)])
        }
        expectInvalid(field: "environment.NUL", mentioning: "NUL") { try Model.validateEnvironment(["NUL": "a\u{0}b"]) }
    }
}
