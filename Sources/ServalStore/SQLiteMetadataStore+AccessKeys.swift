import Foundation
import GRDB
import ServalAuth
import ServalCore

/// Access keys in SQLite: one row per key, the secret sealed (`sealed_secret`), never in clear.
extension SQLiteMetadataStore {
    static func createAccessKeyTable(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE access_key (
                    id TEXT PRIMARY KEY NOT NULL,
                    role TEXT NOT NULL,
                    sealed_secret BLOB NOT NULL,
                    created_at INTEGER NOT NULL,
                    description TEXT);
                """)
    }

    public func createAccessKey(_ stored: StoredAccessKey) async throws {
        do {
            try await database.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO access_key (id, role, sealed_secret, created_at, description)
                        VALUES (?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        stored.key.id, stored.key.role.rawValue, Data(stored.sealedSecret.bytes),
                        stored.key.createdAt.millisecondsSinceEpoch, stored.description,
                    ])
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw ServalError(.conflict, "Access key \"\(stored.key.id)\" already exists.")
        }
    }

    public func accessKey(id: String) async throws -> StoredAccessKey? {
        let row = try database.read { db in
            try Row.fetchOne(
                db, sql: "SELECT id, role, sealed_secret, created_at, description FROM access_key WHERE id = ?",
                arguments: [id])
        }
        return try row.map(Self.accessKey)
    }

    public func accessKeys() async throws -> [StoredAccessKey] {
        let rows = try database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, role, sealed_secret, created_at, description FROM access_key ORDER BY created_at, id")
        }
        return try rows.map(Self.accessKey)
    }

    public func deleteAccessKey(id: String) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM access_key WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    private static func accessKey(_ row: Row) throws -> StoredAccessKey {
        let id: String = row["id"]
        let roleName: String = row["role"]
        guard let role = AccessKeyRole(rawValue: roleName) else {
            throw ServalError(.internalFailure, "Access key \(id) has the unknown role '\(roleName)' in the database.")
        }
        let sealed: Data = row["sealed_secret"]
        return StoredAccessKey(
            key: AccessKey(id: id, role: role, createdAt: Timestamp(millisecondsSinceEpoch: row["created_at"])),
            description: row["description"], sealedSecret: SealedSecret(bytes: Array(sealed)))
    }
}
