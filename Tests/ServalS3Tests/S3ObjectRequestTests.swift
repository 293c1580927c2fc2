import Foundation
import HTTPTypes
import NIOCore
import ServalCore
import ServalObjects
@testable import ServalS3
import Testing

/// The pure parts of object requests: tags, copy sources, copy ranges and conditions, HTTP dates.
@Suite struct S3ObjectRequestTests {
    @Test func taggingBodiesAndHeadersParse() throws {
        let body = ByteBuffer(string: """
            <?xml version="1.0" encoding="UTF-8"?>
            <Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet>
            <Tag><Key>team</Key><Value>ml ops</Value></Tag><Tag><Key>empty</Key><Value></Value></Tag>
            </TagSet></Tagging>
            """)
        #expect(try S3Tagging.parse(body: body) == [ObjectTag(key: "team", value: "ml ops"), ObjectTag(key: "empty", value: "")])
        #expect(try S3Tagging.parse(header: "a=1&b%2Fc=x%20y&d=p+q&e") == [
            ObjectTag(key: "a", value: "1"), ObjectTag(key: "b/c", value: "x y"), ObjectTag(key: "d", value: "p q"),
            ObjectTag(key: "e", value: ""),
        ])
        #expect(try S3Tagging.parse(header: "") == [])
        #expect(throws: S3XML.MalformedXML.self) { try S3Tagging.parse(body: ByteBuffer(string: "<Tagging><Tag/></Tagging>")) }
    }

    @Test func tagsOutsideS3sLimitsAreInvalidTag() throws {
        func code(_ tags: [ObjectTag]) -> String? {
            do {
                try S3Tagging.validate(tags)
                return nil
            } catch {
                return error.code
            }
        }
        let ten = (0..<10).map { ObjectTag(key: "k\($0)", value: "v") }
        #expect(code(ten) == nil)
        #expect(code(ten + [ObjectTag(key: "k10", value: "v")]) == "InvalidTag")
        #expect(code([ObjectTag(key: String(repeating: "é", count: 128), value: String(repeating: "ü", count: 256))]) == nil)
        #expect(code([ObjectTag(key: String(repeating: "k", count: 129), value: "")]) == "InvalidTag")
        #expect(code([ObjectTag(key: "k", value: String(repeating: "v", count: 257))]) == "InvalidTag")
        #expect(code([ObjectTag(key: "", value: "v")]) == "InvalidTag")
        #expect(code([ObjectTag(key: "a", value: "1"), ObjectTag(key: "a", value: "2")]) == "InvalidTag")
        #expect(code([ObjectTag(key: "aws:name", value: "1")]) == "InvalidTag")
        #expect(code([ObjectTag(key: "semi;colon", value: "1")]) == "InvalidTag")
        #expect(code([ObjectTag(key: "path/to:x@y+z=w.v_u-t", value: "ok")]) == nil)
    }

    @Test func copySourcesParse() throws {
        #expect(try S3CopySource(header: "/bucket/a/b.txt") == S3CopySource(bucket: "bucket", key: "a/b.txt"))
        #expect(try S3CopySource(header: "bucket/dir%2Fwith%20space%3F.txt") == S3CopySource(bucket: "bucket", key: "dir/with space?.txt"))
        #expect(try S3CopySource(header: "bucket/k?versionId=null") == S3CopySource(bucket: "bucket", key: "k"))
        #expect(throws: S3Error.self) { try S3CopySource(header: "bucket/k?versionId=3HL4kqtJlcpXroDTDmJ") }
        for bad in ["bucket", "bucket/", "/bucket", "/", "", "%zz/k", "bucket/k?other=1"] {
            #expect(throws: S3Error.self, "\(bad)") { try S3CopySource(header: bad) }
        }
        let version = #expect(throws: S3Error.self) { try S3CopySource(header: "b/k?versionId=x") }
        #expect(version?.code == "NotImplemented" && version?.status.code == 501)
    }

    @Test func copySourceRangesNeedBothOffsets() throws {
        #expect(try S3CopySource.range(header: "bytes=0-99") == 0...99)
        #expect(try S3CopySource.range(header: "bytes=5242880-10485759") == 5_242_880...10_485_759)
        for bad in ["bytes=10-", "bytes=-10", "bytes=9-1", "0-9", "bytes=0-9,20-29", "bytes=a-b"] {
            #expect(throws: S3Error.self, "\(bad)") { try S3CopySource.range(header: bad) }
        }
    }

    @Test func httpDatesParse() {
        #expect(HTTPDate.parse("Wed, 12 Oct 2009 17:50:00 GMT") == Date(timeIntervalSince1970: 1_255_369_800))
        #expect(HTTPDate.parse(HTTPDate.rfc1123(Date(timeIntervalSince1970: 1_700_000_000))) == Date(timeIntervalSince1970: 1_700_000_000))
        #expect(HTTPDate.parse("Wed, 12 Oct 2009 17:50:00 UTC") == nil)
        #expect(HTTPDate.parse("2009-10-12T17:50:00Z") == nil)
        #expect(HTTPDate.parse("Wed, 32 Oct 2009 17:50:00 GMT") == nil)
    }

    @Test func copyConditionsCombineAsS3s() throws {
        let location = try ObjectLocation(bucket: "data", key: "k")
        let info = ObjectInfo(
            location: location, size: 1, etag: "abc", lastModified: Date(timeIntervalSince1970: 1000.5), contentType: "x")
        func holds(_ conditions: S3CopyConditions) -> Bool { (try? conditions.check(info)) != nil }
        let before = Date(timeIntervalSince1970: 999)
        let at = Date(timeIntervalSince1970: 1000)
        #expect(holds(S3CopyConditions()))
        #expect(holds(S3CopyConditions(ifMatch: "\"abc\"")))
        #expect(!holds(S3CopyConditions(ifMatch: "\"abd\"")))
        #expect(holds(S3CopyConditions(ifNoneMatch: "\"abd\"")))
        #expect(!holds(S3CopyConditions(ifNoneMatch: "abc")))
        #expect(holds(S3CopyConditions(ifModifiedSince: before)))
        #expect(!holds(S3CopyConditions(ifModifiedSince: at)))
        #expect(holds(S3CopyConditions(ifUnmodifiedSince: at)))
        #expect(!holds(S3CopyConditions(ifUnmodifiedSince: before)))
        // A matching If-Match wins over a failed If-Unmodified-Since; a holding If-None-Match over If-Modified-Since.
        #expect(holds(S3CopyConditions(ifMatch: "abc", ifUnmodifiedSince: before)))
        #expect(holds(S3CopyConditions(ifNoneMatch: "zzz", ifModifiedSince: at)))
    }

    @Test func writeConditionsComeFromIfMatchAndIfNoneMatch() throws {
        #expect(try S3Responder.writeCondition([:]) == nil)
        #expect(try S3Responder.writeCondition([.ifNoneMatch: "*"]) == .absent)
        #expect(try S3Responder.writeCondition([.ifMatch: "\"abc\""]) == .matching(etag: "abc"))
        #expect(throws: S3Error.self) { try S3Responder.writeCondition([.ifNoneMatch: "\"abc\""]) }
        #expect(throws: S3Error.self) { try S3Responder.writeCondition([.ifNoneMatch: "*", .ifMatch: "abc"]) }
    }
}
