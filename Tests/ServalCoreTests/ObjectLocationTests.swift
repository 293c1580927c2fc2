import ServalCore
import Testing

@Suite struct ObjectLocationTests {
    @Test func bucketNamesFollowS3sRules() {
        for valid in ["abc", "my-bucket", "my.bucket.2", "192.168.5.4x", "10.0.0", "1.2.3.4.5", String(repeating: "a", count: 63)] {
            #expect(throws: Never.self, "\(valid)") { try ObjectLocation.validate(bucket: valid) }
        }
        for invalid in ["ab", "Upper", "-dash", "dash-", "a..b", "under_score", String(repeating: "a", count: 64), "192.168.5.4", "0.0.0.0", "999.999.999.999"] {
            let error = #expect(throws: ServalError.self, "\(invalid)") { try ObjectLocation.validate(bucket: invalid) }
            #expect(error?.code == .validationError)
        }
        let ip = #expect(throws: ServalError.self) { try ObjectLocation.validate(bucket: "192.168.5.4") }
        #expect(ip?.message.contains("IP address") == true)
    }
}
