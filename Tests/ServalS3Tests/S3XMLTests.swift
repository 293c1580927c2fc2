import NIOCore
import ServalS3
import Testing

@Suite struct S3XMLTests {
    @Test func escapesText() {
        #expect(S3XML.escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&apos;")
        #expect(S3XML.escape("plain/key.txt") == "plain/key.txt")
    }

    @Test func writesDocuments() {
        var xml = S3XML.Writer()
        xml.openRoot("ListBucketResult")
        xml.element("Key", "a&b")
        xml.close("ListBucketResult")
        #expect(xml.text.hasSuffix("<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Key>a&amp;b</Key></ListBucketResult>"))
    }

    @Test func readsACompleteMultipartUploadBody() throws {
        let body = """
            <?xml version="1.0" encoding="UTF-8"?>
            <CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Part><ETag>&quot;aaa&quot;</ETag><PartNumber>1</PartNumber></Part>
              <!-- a comment -->
              <Part><PartNumber>2</PartNumber><ETag>"bbb"</ETag><ChecksumCRC32>x</ChecksumCRC32></Part>
            </CompleteMultipartUpload>
            """
        let parsed = try CompleteMultipartUploadBody(ByteBuffer(string: body))
        #expect(parsed.parts == [.init(number: 1, etag: "\"aaa\""), .init(number: 2, etag: "\"bbb\"")])
    }

    @Test func readsADeleteBody() throws {
        let body = "<Delete><Object><Key>a&amp;b</Key></Object><Object><Key><![CDATA[c<d]]></Key><VersionId>1</VersionId></Object><Quiet>true</Quiet></Delete>"
        let parsed = try DeleteObjectsBody(ByteBuffer(string: body))
        #expect(parsed.keys == ["a&b", "c<d"])
        #expect(parsed.quiet)
    }

    @Test func refusesMalformedDocuments() {
        let bad = [
            "", "<a>", "<a></b>", "<a><b></a></b>", "<a>&bogus;</a>", "<a></a><b></b>", "text", "<!DOCTYPE x><a/>",
            "<a x=1></a>", "<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>1</ETag></Part></CompleteMultipartUpload>",
            "<Delete><Object></Object></Delete>",
        ]
        for text in bad {
            #expect(throws: S3XML.MalformedXML.self, "\(text)") {
                if text.hasPrefix("<Complete") {
                    _ = try CompleteMultipartUploadBody(ByteBuffer(string: text))
                } else if text.hasPrefix("<Delete") {
                    _ = try DeleteObjectsBody(ByteBuffer(string: text))
                } else {
                    _ = try S3XML.parse(ByteBuffer(string: text))
                }
            }
        }
    }

    @Test func parsesNestedElementsAndEntities() throws {
        let root = try S3XML.parse(ByteBuffer(string: "<s3:a xmlns:s3='x'><b>&#65;&#x42;</b><c/></s3:a>"))
        #expect(root.name == "a")
        #expect(root.child("b")?.text == "AB")
        #expect(root.child("c") != nil)
    }
}

@Suite struct S3RangeTests {
    @Test func parsesTheForms() {
        #expect(S3Range(header: "bytes=0-9") == .from(0, through: 9))
        #expect(S3Range(header: "bytes=5-") == .from(5, through: nil))
        #expect(S3Range(header: "bytes=-3") == .suffix(3))
        for ignored in ["bytes=", "bytes=a-b", "bytes=5-2", "items=0-1", "bytes=0-1,3-4", "bytes=-", "bytes=1-2-3"] {
            #expect(S3Range(header: ignored) == nil, "\(ignored)")
        }
    }

    @Test func resolvesAgainstASize() {
        #expect(S3Range.from(0, through: 9).resolve(size: 100) == 0...9)
        #expect(S3Range.from(90, through: 200).resolve(size: 100) == 90...99)
        #expect(S3Range.from(5, through: nil).resolve(size: 10) == 5...9)
        #expect(S3Range.from(10, through: nil).resolve(size: 10) == nil)
        #expect(S3Range.suffix(3).resolve(size: 10) == 7...9)
        #expect(S3Range.suffix(30).resolve(size: 10) == 0...9)
        #expect(S3Range.suffix(0).resolve(size: 10) == nil)
        #expect(S3Range.suffix(3).resolve(size: 0) == nil)
    }
}
