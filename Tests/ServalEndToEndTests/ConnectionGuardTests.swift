import Foundation
import ServalCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A plain TCP connection to a loopback port, for requests no HTTP client would send.
final class RawConnection {
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ServalError(.internalFailure, "cannot connect to port \(port)") }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(descriptor)
    }

    func send(_ text: String) {
        _ = text.withCString { Glibc.send(descriptor, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until the server closes the connection or `timeout` passes; returns what arrived and whether the
    /// connection was closed.
    func readUntilClosed(timeout: Duration) -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let count = recv(descriptor, &chunk, chunk.count, 0)
            if count == 0 { return (String(decoding: received, as: UTF8.self), true) }
            if count < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                return (String(decoding: received, as: UTF8.self), true)  // reset
            }
            received.append(contentsOf: chunk[0..<count])
        }
        return (String(decoding: received, as: UTF8.self), false)
    }
}

@Suite struct ConnectionGuardTests {
    @Test func anHTTP10RequestHasItsConnectionClosedAfterTheAnswer() async throws {
        let server = try await ServalServer()
        for port in [server.port, server.s3Port] {
            let connection = try RawConnection(port: port)
            connection.send("GET /ping HTTP/1.0\r\n\r\n")
            let (text, closed) = connection.readUntilClosed(timeout: .seconds(10))
            #expect(closed, "port \(port) kept an HTTP/1.0 connection open: \(text)")
            #expect(text.hasPrefix("HTTP/1.1 "), "\(text)")
            // Asked for, keep-alive still keeps it open.
            let kept = try RawConnection(port: port)
            kept.send("GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            #expect(!kept.readUntilClosed(timeout: .seconds(2)).closed)
        }
        await server.stop()
    }

    @Test func anHTTP11RequestWithoutHostIs400() async throws {
        let server = try await ServalServer()
        let connection = try RawConnection(port: server.port)
        connection.send("GET /ping HTTP/1.1\r\n\r\n")
        let (text, closed) = connection.readUntilClosed(timeout: .seconds(10))
        #expect(closed)
        #expect(text.hasPrefix("HTTP/1.1 400"), "\(text)")
        #expect(text.contains("\"code\":\"ValidationError\""), "\(text)")
        #expect(text.contains("Host header"), "\(text)")
        let s3 = try RawConnection(port: server.s3Port)
        s3.send("GET / HTTP/1.1\r\n\r\n")
        let answer = s3.readUntilClosed(timeout: .seconds(10)).text
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
                var chunk = [UInt8](repeating: 0, count: 512)
                var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
                setsockopt(connection.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                let count = recv(connection.descriptor, &chunk, chunk.count, 0)
                if count > 0 {
                    #expect(String(decoding: chunk[0..<count], as: UTF8.self).hasPrefix("HTTP/1.1 408"))
                }
                if count >= 0 {
                    closedAfter = ContinuousClock.now - start
                    break
                }
            }
            let held = try #require(closedAfter, "port \(port) held a trickling client for \(ContinuousClock.now - start)")
            #expect(held >= .milliseconds(900) && held < .seconds(5), "port \(port): \(held)")
        }
        // A client that sends its head at once is not affected.
        let prompt = try RawConnection(port: server.port)
        prompt.send("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(prompt.readUntilClosed(timeout: .seconds(5)).text.hasPrefix("HTTP/1.1 200"))
        await server.stop()
    }

    @Test func connectionsOverTheLimitAreRefusedWith503() async throws {
        let server = try await ServalServer(arguments: ["--max-connections", "2"])
        var first: RawConnection? = try RawConnection(port: server.port)
        let second = try RawConnection(port: server.port)
        first?.send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        second.send("GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        let third = try RawConnection(port: server.port)
        let (text, closed) = third.readUntilClosed(timeout: .seconds(10))
        #expect(closed)
        #expect(text.hasPrefix("HTTP/1.1 503"), "\(text)")
        #expect(text.contains("TooManyConnections") && text.contains("Retry-After: 1"), "\(text)")
        // Once one closes, a new connection is served.
        #expect(first?.readUntilClosed(timeout: .milliseconds(200)).text.hasPrefix("HTTP/1.1 200") == true)
        first = nil
        try await eventually(timeout: .seconds(10), "a freed slot is served") {
            let again = try RawConnection(port: server.port)
            again.send("GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return again.readUntilClosed(timeout: .seconds(5)).text.hasPrefix("HTTP/1.1 200")
        }
        await server.stop()
    }
}
