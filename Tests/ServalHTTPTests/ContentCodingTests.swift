import Testing

@testable import ServalHTTP

/// Which content coding a request body has and a response gets.
@Suite struct ContentCodingTests {
    @Test("Content-Encoding: gzip and deflate are read, identity or none is plain, anything else is refused")
    func requestCoding() throws {
        #expect(try ContentCoding(contentEncoding: nil) == nil)
        #expect(try ContentCoding(contentEncoding: "identity") == nil)
        #expect(try ContentCoding(contentEncoding: "gzip") == .gzip)
        #expect(try ContentCoding(contentEncoding: " GZIP ") == .gzip)
        #expect(try ContentCoding(contentEncoding: "deflate") == .deflate)
        for refused in ["br", "gzip, deflate", "zstd"] {
            #expect(throws: (any Error).self, "\(refused)") { try ContentCoding(contentEncoding: refused) }
        }
    }

    @Test("Accept-Encoding prefers gzip, then deflate, and honours q=0")
    func responseCoding() {
        #expect(ContentCoding.preferred(acceptEncoding: nil) == nil)
        #expect(ContentCoding.preferred(acceptEncoding: "identity") == nil)
        #expect(ContentCoding.preferred(acceptEncoding: "gzip") == .gzip)
        #expect(ContentCoding.preferred(acceptEncoding: "deflate") == .deflate)
        #expect(ContentCoding.preferred(acceptEncoding: "deflate, gzip;q=0.5") == .gzip)
        #expect(ContentCoding.preferred(acceptEncoding: "gzip;q=0, deflate") == .deflate)
        #expect(ContentCoding.preferred(acceptEncoding: "gzip; q=0 , deflate;q=0") == nil)
        #expect(ContentCoding.preferred(acceptEncoding: "br") == nil)
    }
}
