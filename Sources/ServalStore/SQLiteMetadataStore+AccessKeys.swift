import Foundation
import GRDB
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
                        stored.id, stored.role, Data(stored.sealedSecret), stored.createdAt.millisecondsSinceEpoch,
                        stored.description,
                    ])
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw ServalError(.conflict, "Access key \"\(stored.id)\" already exists.")
        }
    }

    public func accessKey(id: String) async throws -> StoredAccessKey? {
        try await database.read { db in
            try Row.fetchOne(
                db, sql: "SELECT id, role, sealed_secret, created_at, description FROM access_key WHERE id = ?",
                arguments: [id]
            ).map(Self.accessKey)
        }
    }

    public func accessKeys() async throws -> [StoredAccessKey] {
        try await database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, role, sealed_secret, created_at, description FROM access_key ORDER BY created_at, id"
            ).map(Self.accessKey)
        }
    }

    public func deleteAccessKey(id: String) async throws -> Bool {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM access_key WHERE id = ?", arguments: [id])
            return db.changesCount > 0
        }
    }

    private static func accessKey(_ row: Row) -> StoredAccessKey {
        StoredAccessKey(
            id: row["id"], role: row["role"], createdAt: Timestamp(millisecondsSinceEpoch: row["created_at"]),
            description: row["description"], sealedSecret: Array(row["sealed_secret"] as Data))
    }
}
