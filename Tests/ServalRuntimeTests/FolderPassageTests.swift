import Foundation
import ServalCore
import Testing

@testable import ServalRuntime

#if canImport(Glibc)
import Glibc
#endif

@Suite struct FolderPassageTests {
    /// `root/a/b/model.txt` with every folder 0700.
    private static func makeTree() throws -> (root: String, file: String) {
        let root = NSTemporaryDirectory() + "serval-passage-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: root + "/a/b", withIntermediateDirectories: true)
        try "weights".write(toFile: root + "/a/b/model.txt", atomically: true, encoding: .utf8)
        for folder in [root, root + "/a", root + "/a/b"] { chmod(folder, 0o700) }
        chmod(root + "/a/b/model.txt", 0o644)
        return (root, root + "/a/b/model.txt")
    }

    @Test func grantsPassageOnlyWhereNeededAndOnlyOnce() throws {
        let tree = try Self.makeTree()
        defer { try? FileManager.default.removeItem(atPath: tree.root) }
        var granted: [String] = []
        try FolderPassage.grant(toReach: tree.file, for: 54321, granted: &granted)
        #expect(granted == [tree.root, tree.root + "/a", tree.root + "/a/b"])
        var info = stat()
        stat(tree.root, &info)
        #expect(info.st_mode & 0o7777 == 0o710, "the mask shows as group bits; others still have nothing")
        var again: [String] = []
        try FolderPassage.grant(toReach: tree.file, for: 54321, granted: &again)
        #expect(again.isEmpty)
    }

    @Test func followsLinksToWhatTheyPointAt() throws {
        let tree = try Self.makeTree()
        let links = try Self.makeTree()
        defer {
            try? FileManager.default.removeItem(atPath: tree.root)
            try? FileManager.default.removeItem(atPath: links.root)
        }
        try FileManager.default.createSymbolicLink(atPath: links.root + "/a/b/python", withDestinationPath: tree.file)
        var granted: [String] = []
        try FolderPassage.grant(toReach: links.root + "/a/b/python", for: 54321, granted: &granted)
        #expect(Set(granted) == [links.root, links.root + "/a", links.root + "/a/b", tree.root, tree.root + "/a", tree.root + "/a/b"])
    }

    @Test(.enabled(if: geteuid() == 0, "switching users needs root"))
    func theUserCanOpenButNotList() async throws {
        let tree = try Self.makeTree()
        defer { try? FileManager.default.removeItem(atPath: tree.root) }
        let nobody = ProcessUser(name: "nobody", uid: 65534, gid: 65534)
        let before = try await runToCompletion(ChildLaunch(arguments: ["/bin/cat", tree.file], environment: [:], user: nobody))
        #expect(before.status != .exited(0))
        var granted: [String] = []
        try FolderPassage.grant(toReach: tree.file, for: nobody.uid, granted: &granted)
        let read = try await runToCompletion(ChildLaunch(arguments: ["/bin/cat", tree.file], environment: [:], user: nobody))
        #expect(read.output == "weights")
        let list = try await runToCompletion(ChildLaunch(arguments: ["/bin/ls", tree.root + "/a"], environment: [:], user: nobody))
        #expect(list.status != .exited(0), "\(list.output)")
    }
}
