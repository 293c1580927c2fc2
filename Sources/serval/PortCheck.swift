import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Checks, before anything starts, that the ports `serve` listens on are free, so that a port already taken ends
/// the start at once with a message naming it and, when `/proc` tells, the process holding it.
enum PortCheck {
    /// Binds and releases each port; throws ``StartupFailure`` for the first that cannot be bound.
    ///
    /// - Parameter ports: what each port is for (`"HTTP"`, `"gRPC"`, `"S3"`) and its number; 0 is skipped.
    static func ensureFree(host: String, ports: [(name: String, port: Int)], flag: (String) -> String) throws {
        for (name, port) in ports where port != 0 {
            let address: SocketAddress
            do {
                address = try SocketAddress.makeAddressResolvingHost(host, port: port)
            } catch {
                throw StartupFailure("Cannot resolve --host \(host): \(error).")
            }
            let error = tryBind(address)
            guard error != 0 else { continue }
            var message = "The \(name) port \(host):\(port) is not available: \(String(cString: strerror(error)))."
            if error == EADDRINUSE {
                if let holder = holder(ofPort: port) { message += " It is held by \(holder)." }
                message += " Stop that process, or pass \(flag(name)) with another port (0 picks a free one)."
            }
            throw StartupFailure(message)
        }
    }

    /// Binds a socket to `address` as the servers do (SO_REUSEADDR) and closes it; returns the errno or 0.
    private static func tryBind(_ address: SocketAddress) -> Int32 {
        let descriptor = socket(Int32(address.protocol.rawValue), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return errno }
        defer { close(descriptor) }
        var one: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let status = address.withSockAddr { pointer, size in bind(descriptor, pointer, socklen_t(size)) }
        guard status == 0 else { return errno }
        return listen(descriptor, 1) == 0 ? 0 : errno
    }

    /// "pid 123 (serval)" for the process with a socket listening on TCP `port`, when `/proc` tells. The kernel
    /// hands `/proc/net/tcp` out a page at a time, so a read while other sockets open and close may skip the line
    /// sought: a search that finds nothing is made again, three times at most.
    static func holder(ofPort port: Int) -> String? {
        for _ in 0..<3 {
            if let found = searchHolder(ofPort: port) { return found }
        }
        return nil
    }

    private static func searchHolder(ofPort port: Int) -> String? {
        var inodes = Set<String>()
        for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
            guard let text = try? String(contentsOfFile: table, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
                guard fields.count > 9, fields[3] == "0A",
                    let colon = fields[1].lastIndex(of: ":"), Int(fields[1][fields[1].index(after: colon)...], radix: 16) == port
                else { continue }
                inodes.insert("socket:[\(fields[9])]")
            }
        }
        guard !inodes.isEmpty, let processes = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for pid in processes where pid.allSatisfy(\.isNumber) {
            guard let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
            for descriptor in descriptors {
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(descriptor)"),
                    inodes.contains(target)
                else { continue }
                let name = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines)
                return "pid \(pid)" + (name.map { " (\($0))" } ?? "")
            }
        }
        return nil
    }
}
