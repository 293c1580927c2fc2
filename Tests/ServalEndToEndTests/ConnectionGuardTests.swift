import Foundation
import ServalCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ConnectionGuardTests {
    @Test func anHTTP10RequestHasItsConnectionClosedAfterTheAnswer() async throws {
        let server = try await ServalServer()
        for port in [server.port, server.s3Port] {
            let connection = try RawConnection(port: port)
            connection.send("GET /ping HTTP/1.0\r\n\r\n")
            let (text, closed) = await connection.readUntilClosed(timeout: .seconds(10))
            #expect(closed, "port \(port) kept an HTTP/1.0 connection open: \(text)")
            #expect(text.hasPrefix("HTTP/1.1 "), "\(text)")
            // Asked for, keep-alive still keeps it open.
            let kept = try RawConnection(port: port)
            kept.send("GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            let keptOpen = await kept.readUntilClosed(timeout: .seconds(2))
            #expect(!keptOpen.closed)
        }
        await server.stop()
    }

    @Test func anHTTP11RequestWithoutHostIs400() async throws {
        let server = try await ServalServer()
        let connection = try RawConnection(port: server.port)
        connection.send("GET /ping HTTP/1.1\r\n\r\n")
        let (text, closed) = await connection.readUntilClosed(timeout: .seconds(10))
        #expect(closed)
        #expect(text.hasPrefix("HTTP/1.1 400"), "\(text)")
        #expect(text.contains("\"code\":\"ValidationError\""), "\(text)")
        #expect(text.contains("Host header"), "\(text)")
        let s3 = try RawConnection(port: server.s3Port)
        s3.send("GET / HTTP/1.1\r\n\r\n")
        let answer = await s3.readUntilClosed(timeout: .seconds(10)).text
        #expect(answer.hasPrefix("HTTP/1.1 400") && answer.contains("<Code>ValidationError</Code>"), "\(answer)")
        await server.stop()
    }

    @Test func aClientTricklingItsHeadIsClosedAtTheHeaderDeadline() async throws {
        let server = try await ServalServer(arguments: ["--header-timeout", "1"])
        for port in [server.port, server.s3Port] {
            let connection = try RawConnection(port: port)
            let start = ContinuousClock.now
            var closedAfter: Duration?
            // One byte every 200 ms, as a slow-loris client sends; it never finishes its head.
            for byte in "GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".utf8 {
                connection.send(String(UnicodeScalar(byte)))
                let (bytes, closed) = await connection.receive(timeout: .milliseconds(200))
                if !bytes.isEmpty {
                    #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("HTTP/1.1 408"))
                }
                if !bytes.isEmpty || closed {
                    closedAfter = ContinuousClock.now - start
                    break
                }
            }
            let held = try #require(closedAfter, "port \(port) held a trickling client for \(ContinuousClock.now - start)")
            // The upper bound only says the deadline acted; the whole suite shares two cores.
            #expect(held >= .milliseconds(900) && held < .seconds(240), "port \(port): \(held)")
        }
        // A client that sends its head at once is not affected.
        let prompt = try RawConnection(port: server.port)
        prompt.send("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(await prompt.readUntilClosed(timeout: .seconds(60)).text.hasPrefix("HTTP/1.1 200"))
        await server.stop()
    }

    @Test func aKeptAliveConnectionIdleAfterARequestWithABodyIsNotCutAtTheHeaderDeadline() async throws {
        let server = try await ServalServer(arguments: ["--header-timeout", "1"])
        let connection = try RawConnection(port: server.s3Port)
        func answer() async -> String {
            var received = ""
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline {
                let (bytes, closed) = await connection.receive(timeout: .seconds(1))
                received += String(decoding: bytes, as: UTF8.self)
                if closed { break }
                if let end = received.range(of: "\r\n\r\n"), received.lowercased().contains("content-length: 0")
                    || received[end.upperBound...].count > 0
                {
                    return received
                }
            }
            return received
        }
        connection.send("PUT /guarded HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        #expect(await answer().hasPrefix("HTTP/1.1 200"))
        // The body comes in its own segment, after its head.
        connection.send("PUT /guarded/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        try await Task.sleep(for: .milliseconds(100))
        connection.send("hello")
        #expect(await answer().hasPrefix("HTTP/1.1 200"))
        // Idle longer than the header deadline: that is the idle timeout's business, not the deadline's.
        try await Task.sleep(for: .milliseconds(1500))
        connection.send("GET /guarded/k HTTP/1.1\r\nHost: x\r\n\r\n")
        let got = await answer()
        #expect(got.hasPrefix("HTTP/1.1 200") && got.hasSuffix("hello"), "\(got)")
        await server.stop()
    }

    @Test func connectionsOverTheLimitAreRefusedWith503() async throws {
        let server = try await ServalServer(arguments: ["--max-connections", "2"])
        // Two connections, each answered before the next opens (so that the server has counted both, whatever
        // order its event loops set connections up in), kept open.
        func served(_ connection: RawConnection) async -> Bool {
            connection.send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            var received = ""
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline, !received.contains("\r\n\r\n") {
                let (bytes, closed) = await connection.receive(timeout: .seconds(1))
                received += String(decoding: bytes, as: UTF8.self)
                if closed { break }
            }
            return received.hasPrefix("HTTP/1.1 200")
        }
        var first: RawConnection? = try RawConnection(port: server.port)
        #expect(await served(first!))
        let second = try RawConnection(port: server.port)
        #expect(await served(second))
        let third = try RawConnection(port: server.port)
        let (text, closed) = await third.readUntilClosed(timeout: .seconds(120))
        #expect(closed)
        #expect(text.hasPrefix("HTTP/1.1 503"), "\(text)")
        #expect(text.contains("TooManyConnections") && text.contains("Retry-After: 1"), "\(text)")
        // Once one closes, a new connection is served.
        first = nil
        try await eventually(timeout: .seconds(120), "a freed slot is served") {
            let again = try RawConnection(port: server.port)
            again.send("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return await again.readUntilClosed(timeout: .seconds(60)).text.hasPrefix("HTTP/1.1 200")
        }
        await server.stop()
    }
}
