import Foundation
import ServalAuth
import ServalStore
import Testing

/// A database that conformance tests run against. Every `open()` returns a new store on the same data, so that
/// a test can check what survives a restart.
protocol StoreBackend: Sendable {
    /// Opens a store on the backend's data.
    func open() throws -> any MetadataStore
    /// Deletes the backend's data.
    func destroy()
}

/// Every ``MetadataStore`` implementation the conformance suite runs against. A PostgreSQL store joins by
/// adding a case here and a backend that creates a fresh database or schema.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite

    var testDescription: String { rawValue }

    func makeBackend() throws -> any StoreBackend {
        switch self {
        case .sqlite: try SQLiteBackend()
        }
    }
}

/// A SQLite database file in a fresh temporary folder, sealing secrets as `serve` does.
struct SQLiteBackend: StoreBackend {
    let folder: String
    let sealer = SecretSealer(masterKey: .generate())

    init() throws {
        folder = NSTemporaryDirectory() + "serval-store-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    func open() throws -> any MetadataStore {
        try SQLiteMetadataStore(path: folder + "/serval.sqlite", sealer: sealer)
    }

    /// Every byte the database holds on disk, the write-ahead log included.
    func rawBytes() -> Data {
        ["", "-wal"].reduce(into: Data()) { bytes, suffix in
            bytes.append(FileManager.default.contents(atPath: folder + "/serval.sqlite" + suffix) ?? Data())
        }
    }

    func destroy() {
        try? FileManager.default.removeItem(atPath: folder)
    }
}

/// Runs `body` with a fresh store of `kind`, and the backend to reopen it, then deletes its data.
func withStore(
    _ kind: StoreKind, _ body: (_ store: any MetadataStore, _ backend: any StoreBackend) async throws -> Void
) async throws {
    let backend = try kind.makeBackend()
    defer { backend.destroy() }
    try await body(try backend.open(), backend)
}
