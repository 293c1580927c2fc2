import ServalCore
import Testing

@Suite("ResourceTags")
struct ResourceTagsTests {
    func tag(_ key: String, _ value: String = "v") -> ResourceTag { ResourceTag(key: key, value: value) }

    @Test("keys of 1 to 128 and values of 0 to 256 letters, digits, spaces and _ . : / = + - @ pass, in any script")
    func valid() {
        let tags = [
            tag("team"), tag("cost center", ""), tag(String(repeating: "k", count: 128), String(repeating: "v", count: 256)),
            tag("a_b.c:d/e=f+g-h@i", "x_y.z:/=+-@ 9"), tag("équipe", "données"), tag("チーム", "機械学習"), tag("awsome", "aws:ok"),
        ]
        #expect(failure { try ResourceTags.validate(tags, field: "Tags") } == nil)
        #expect(failure { try ResourceTags.validate([], field: "Tags") } == nil)
        #expect(failure { try ResourceTags.validate(keys: ["team", "cost center"], field: "TagKeys") } == nil)
    }

    @Test("bad keys and values fail naming the entry")
    func invalid() {
        expectInvalid(field: "Tags[1].Key", mentioning: "0 characters") { try ResourceTags.validate([tag("a"), tag("")], field: "Tags") }
        expectInvalid(field: "Tags[0].Key", mentioning: "129 characters") {
            try ResourceTags.validate([tag(String(repeating: "k", count: 129))], field: "Tags")
        }
        expectInvalid(field: "Tags[0].Value", mentioning: "257 characters") {
            try ResourceTags.validate([tag("k", String(repeating: "v", count: 257))], field: "Tags")
        }
        for reserved in ["aws:created", "AWS:x", "Aws:"] {
            expectInvalid(field: "Tags[0].Key", mentioning: "reserved") { try ResourceTags.validate([tag(reserved)], field: "Tags") }
        }
        for bad in ["a;b", "a\"b", "a\nb", "a#b", "a*b", "🐆", "a\u{0}b"] {
            expectInvalid(field: "Tags[0].Key", mentioning: "contains") { try ResourceTags.validate([tag(bad)], field: "Tags") }
            expectInvalid(field: "Tags[0].Value", mentioning: "contains") { try ResourceTags.validate([tag("k", bad)], field: "Tags") }
        }
        expectInvalid(field: "Tags[2].Key", mentioning: "twice") { try ResourceTags.validate([tag("a"), tag("b"), tag("a")], field: "Tags") }
        expectInvalid(field: "Tags", mentioning: "51 tags") {
            try ResourceTags.validate((0..<51).map { tag("k\($0)") }, field: "Tags")
        }
        expectInvalid(field: "TagKeys", mentioning: "0 keys") { try ResourceTags.validate(keys: [], field: "TagKeys") }
        expectInvalid(field: "TagKeys", mentioning: "51 keys") {
            try ResourceTags.validate(keys: (0..<51).map { "k\($0)" }, field: "TagKeys")
        }
        expectInvalid(field: "TagKeys[1]", mentioning: "reserved") { try ResourceTags.validate(keys: ["a", "aws:b"], field: "TagKeys") }
    }

    @Test("merging replaces the value of a key in its place, appends new keys, and stops at 50")
    func merging() throws {
        let merged = try ResourceTags.merging([tag("a", "1"), tag("b", "2")], [tag("c", "3"), tag("a", "9")])
        #expect(merged == [tag("a", "9"), tag("b", "2"), tag("c", "3")])
        let full = (0..<50).map { tag("k\($0)") }
        #expect(try ResourceTags.merging(full, [tag("k7", "new")]).count == 50)
        expectInvalid(field: "Tags", mentioning: "51 tags; the limit is 50") { _ = try ResourceTags.merging(full, [tag("one-more")]) }
    }
}
