import Foundation
public import ServalCore

#if canImport(Glibc)
import Glibc
#endif

/// Which addresses webhook notifications may be sent to.
///
/// An allow-list of entries, each a host name (`hooks.example.com`), a wildcard domain (`*.example.com`), an IP
/// address, a CIDR block (`10.0.0.0/8`, `fd00::/8`), or `*` for any host. A URL is allowed when every address its
/// host resolves to is allowed: an address inside a listed block is; a public address is when the host's name is
/// listed; a loopback or private address (`127.0.0.0/8`, `::1`, `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`,
/// `100.64.0.0/10`, `fc00::/7`) only when a block covers it or the list is `*`, so a listed name cannot be
/// pointed at Serval's own host or the internal network. Whatever the list says, addresses no webhook should
/// reach are refused: link-local ones (which include cloud metadata services such as 169.254.169.254),
/// unspecified and multicast ones.
///
/// A URL is checked when a config names it and again before each delivery, which then connects to one of the
/// addresses this check resolved (``WebhookTarget``), so a second lookup cannot re-point the name.
public struct WebhookPolicy: Sendable, Equatable {
    /// The allow-list entries, as given.
    public let entries: [String]
    private let anyHost: Bool
    private let hosts: Set<String>
    private let domainSuffixes: [String]
    private let blocks: [AddressBlock]

    /// Any host, except the always-refused addresses.
    public static let anyHost = try! WebhookPolicy(allow: ["*"])

    /// Parses allow-list entries; throws a validation error naming a malformed one.
    public init(allow entries: [String]) throws(ServalError) {
        self.entries = entries
        var anyHost = false
        var hosts = Set<String>()
        var suffixes: [String] = []
        var blocks: [AddressBlock] = []
        for entry in entries.map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !entry.isEmpty {
            if entry == "*" {
                anyHost = true
            } else if entry.hasPrefix("*.") {
                suffixes.append(String(entry.dropFirst()))
            } else if let block = AddressBlock(entry) {
                blocks.append(block)
            } else if entry.contains("/") || entry.contains(":") {
                throw .invalid("--webhook-allow", "\"\(entry)\" is neither a host name, an IP address nor a CIDR block.")
            } else {
                hosts.insert(entry)
            }
        }
        self.anyHost = anyHost
        self.hosts = hosts
        self.domainSuffixes = suffixes
        self.blocks = blocks
    }

    public static func == (lhs: WebhookPolicy, rhs: WebhookPolicy) -> Bool { lhs.entries == rhs.entries }

    /// Checks a webhook URL (see ``target(for:field:resolve:)``); `field` names the setting, for messages.
    public func check(_ url: String, field: String) throws(ServalError) {
        _ = try target(for: url, field: field)
    }

    /// Checks a webhook URL and says where to connect: http or https, and a host whose every resolved address
    /// the policy allows. `resolve` gives the addresses of a host name (the system resolver by default; an
    /// address literal is never passed to it). Throws a validation error naming `field` and the refused
    /// address.
    public func target(
        for url: String, field: String, resolve: (String) -> [String] = WebhookPolicy.systemResolve
    ) throws(ServalError) -> WebhookTarget {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else {
            throw .invalid(field, "\"\(url)\" is not an http:// or https:// URL.")
        }
        let bareHost = (host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host).lowercased()
        let literal = IPAddress(bareHost)
        let addresses = literal.map { [$0] } ?? resolve(bareHost).compactMap { IPAddress($0) }
        guard !addresses.isEmpty else {
            throw .invalid(field, "the host \"\(bareHost)\" of \"\(url)\" does not resolve to an address.")
        }
        if let refused = addresses.first(where: \.isAlwaysRefused) {
            throw .invalid(
                field,
                "\"\(url)\" points at \(refused), a link-local, unspecified or multicast address; webhooks may not be sent there.")
        }
        let nameAllowed = anyHost || hosts.contains(bareHost) || domainSuffixes.contains { bareHost.hasSuffix($0) }
        for address in addresses where !blocks.contains(where: { $0.contains(address) }) {
            guard nameAllowed else {
                throw .invalid(
                    field,
                    "\"\(url)\" is not on the webhook allow-list (\(entries.joined(separator: ", "))); start Serval with --webhook-allow \(bareHost) to allow it.")
            }
            guard anyHost || !address.isInternal else {
                throw .invalid(
                    field,
                    "\"\(url)\": \(bareHost) resolves to \(address), a loopback or private address that no --webhook-allow block covers; start Serval with --webhook-allow \(address) (or its CIDR block) if webhooks may go there.")
            }
        }
        // IPv4 first: a receiver listening on both is reached either way, and most listen on IPv4 only.
        let ordered = addresses.filter(\.isV4) + addresses.filter { !$0.isV4 }
        return WebhookTarget(url: url, host: host, isAddressLiteral: literal != nil, addresses: ordered.map(\.description))
    }

    /// Every address `host` resolves to through the system resolver (`getaddrinfo`), as text.
    public static func systemResolve(_ host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
        defer { freeaddrinfo(first) }
        var addresses: [String] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let address = IPAddress(sockaddr: info.pointee.ai_addr) { addresses.append(address.description) }
            cursor = info.pointee.ai_next
        }
        return addresses
    }
}

/// A webhook URL the policy allowed, with the addresses it was allowed for. A delivery connects to
/// ``connectAddress`` rather than looking the name up again, so DNS cannot re-point it between the check and
/// the connection; the request still carries the URL's host (in `Host` and, for https, in TLS).
public struct WebhookTarget: Sendable, Equatable {
    /// The URL, as configured.
    public var url: String
    /// The URL's host, as the URL writes it.
    public var host: String
    /// Whether the host is an IP address rather than a name.
    public var isAddressLiteral: Bool
    /// Every address the host resolved to, all allowed, IPv4 first.
    public var addresses: [String]

    /// The address to connect to.
    public var connectAddress: String { addresses[0] }
}

/// An IPv4 or IPv6 address as 16 bytes (IPv4 as an IPv4-mapped IPv6 address).
struct IPAddress: Sendable, Equatable, CustomStringConvertible {
    var bytes: [UInt8]
    var isV4: Bool

    init?(_ text: String) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            self.init(v4: withUnsafeBytes(of: &v4) { Array($0) })
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            self.init(v6: withUnsafeBytes(of: &v6) { Array($0) })
        } else {
            return nil
        }
    }

    init(v4: [UInt8]) {
        self.init(bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] + v4, isV4: true)
    }

    /// An IPv6 address; an IPv4-mapped one (`::ffff:a.b.c.d`) counts as IPv4.
    init(v6 raw: [UInt8]) {
        if raw[0..<10].allSatisfy({ $0 == 0 }) && raw[10] == 0xFF && raw[11] == 0xFF {
            self.init(v4: Array(raw[12..<16]))
        } else {
            self.init(bytes: raw, isV4: false)
        }
    }

    private init(bytes: [UInt8], isV4: Bool) {
        self.bytes = bytes
        self.isV4 = isV4
    }

    init?(sockaddr pointer: UnsafeMutablePointer<sockaddr>?) {
        guard let pointer else { return nil }
        switch Int32(pointer.pointee.sa_family) {
        case AF_INET:
            let address = pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            self.init(v4: withUnsafeBytes(of: address) { Array($0) })
        case AF_INET6:
            let address = pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
            self.init(v6: withUnsafeBytes(of: address) { Array($0) })
        default:
            return nil
        }
    }

    /// Link-local (incl. metadata services), unspecified, multicast and broadcast addresses.
    var isAlwaysRefused: Bool {
        if isV4 {
            let a = bytes[12]
            let b = bytes[13]
            return a == 0 || (a == 169 && b == 254) || a >= 224
        }
        return bytes.allSatisfy { $0 == 0 } || bytes[0] == 0xFF || (bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80)
    }

    /// Loopback and private addresses: `127.0.0.0/8`, `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`,
    /// `100.64.0.0/10` (shared address space), `::1` and `fc00::/7` (unique local).
    var isInternal: Bool {
        if isV4 {
            let a = bytes[12]
            let b = bytes[13]
            return a == 127 || a == 10 || (a == 172 && b & 0xF0 == 16) || (a == 192 && b == 168) || (a == 100 && b & 0xC0 == 64)
        }
        return bytes == [UInt8](repeating: 0, count: 15) + [1] || bytes[0] & 0xFE == 0xFC
    }

    /// The usual text form: `10.0.0.1`, `::1`, `fd00::1`.
    var description: String {
        if isV4 { return bytes[12..<16].map(String.init).joined(separator: ".") }
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else {
            return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
                .joined(separator: ":")
        }
        return text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

/// An address with a prefix length: `10.0.0.0/8`, `::1/128`, or one address.
struct AddressBlock: Sendable, Equatable {
    var address: IPAddress
    var prefixBits: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let address = IPAddress(parts[0]) else { return nil }
        let width = address.isV4 ? 32 : 128
        var bits = width
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...width).contains(parsed) else { return nil }
            bits = parsed
        }
        self.address = address
        self.prefixBits = address.isV4 ? bits + 96 : bits
    }

    func contains(_ other: IPAddress) -> Bool {
        guard other.isV4 == address.isV4 else { return false }
        var remaining = prefixBits
        for index in 0..<16 where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            if address.bytes[index] & mask != other.bytes[index] & mask { return false }
            remaining -= 8
        }
        return true
    }
}
