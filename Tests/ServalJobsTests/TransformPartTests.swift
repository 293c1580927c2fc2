import Foundation
import Testing

@testable import ServalJobs

@Suite("Transform parts: committed whole")
struct TransformPartTests {
    /// Two attempts of one unit can run at once in one process (its lease expired and this process claimed it
    /// again): their commits of the same part must not share a temporary file, or one renames the other's half
    /// written file into place (and then fails to find its own).
    @Test("concurrent commits of one part leave one attempt's bytes whole, and both succeed")
    func concurrentCommits() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("serval-parts-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let first = [UInt8](repeating: 0x61, count: 4 << 20)
        let second = [UInt8](repeating: 0x62, count: 4 << 20)
        for round in 0..<20 {
            let path = folder + "/0/\(round)"
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await TransformPart.commit(first, at: path) }
                group.addTask { try await TransformPart.commit(second, at: path) }
                try await group.waitForAll()
            }
            let stored = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(stored == first || stored == second, "round \(round): \(stored.count) bytes, not one attempt's")
        }
    }

    @Test("a part written in pieces appears whole on commit; an attempt that never commits leaves nothing")
    func writtenInPieces() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("serval-parts-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/3/1"
        let writer = try await TransformPart.Writer(path: path)
        var expected: [UInt8] = []
        for piece in 0..<5 {
            let bytes = [UInt8](repeating: UInt8(0x30 + piece), count: 300_000 + piece)
            try await writer.write(bytes)
            expected += bytes
            #expect(!FileManager.default.fileExists(atPath: path), "the part is visible before its commit")
        }
        try await writer.commit()
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: path))) == expected)

        do {
            let abandoned = try await TransformPart.Writer(path: folder + "/3/2")
            try await abandoned.write([1, 2, 3])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder + "/3") == ["1"])
    }
}
