import Foundation
import Testing

/// Keeps the module list of `docs/architecture.md` true to `Package.swift`: every module is listed, and each entry's
/// arrow (`Name  → Core, Store: …`) names exactly the Serval modules the target depends on directly.
@Suite struct ArchitectureDocumentTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func theModuleListMatchesThePackage() throws {
        let package = try String(contentsOf: Self.root.appending(path: "Package.swift"), encoding: .utf8)
        let document = try String(contentsOf: Self.root.appending(path: "docs/architecture.md"), encoding: .utf8)
        let targets = Self.targets(package)
        let entries = try Self.entries(document)
        #expect(targets.count > 10, "Package.swift was not parsed: \(targets)")

        // Test targets, the fuzzing seeds and the benchmark's load generator are not modules of Serval.
        let modules = targets.filter { !$0.key.hasSuffix("Tests") && $0.key != "ServalFuzzSupport" && $0.key != "serval-grpc-load" }
        #expect(Set(entries.keys) == Set(modules.keys), "modules listed vs declared")
        for (name, dependencies) in modules where name != "serval" {
            let local = dependencies.filter { targets[$0] != nil }
            let listed = (entries[name] ?? []).map { modules[$0] != nil ? $0 : "Serval" + $0 }
            #expect(Set(listed) == Set(local), "\(name): the document lists \(listed.sorted()), Package.swift \(local.sorted())")
        }
    }

    /// Each target's name and the names of the targets and products it depends on, from `Package.swift`.
    static func targets(_ package: String) -> [String: [String]] {
        var targets: [String: [String]] = [:]
        let declaration = /\.(?:target|executableTarget|testTarget|systemLibrary)\(\s*name: "([\w-]+)"/
        for match in package.matches(of: declaration) {
            let name = String(match.output.1)
            let rest = package[match.range.upperBound...]
            // The dependency list, when it comes before the next declaration.
            let next = rest.firstMatch(of: declaration)?.range.lowerBound ?? rest.endIndex
            var dependencies: [String] = []
            if let list = rest[..<next].firstMatch(of: /dependencies: \[([^\]]*)\]/) {
                let withoutProducts = list.output.1.replacing(/\.product\([^)]*\)/, with: "")
                dependencies = withoutProducts.matches(of: /"([\w-]+)"/).map { String($0.output.1) }
            }
            targets[name] = dependencies
        }
        return targets
    }

    /// Each entry of the document's module list and the module names of its arrow (empty without one).
    static func entries(_ document: String) throws -> [String: [String]] {
        let section = try #require(document.firstRange(of: "## Modules"))
        let block = document[section.upperBound...].split(separator: "```", omittingEmptySubsequences: false)[1]
        var entries: [String: [String]] = [:]
        for line in block.split(separator: "\n") {
            guard let match = line.wholeMatch(of: /([\w\/-]+)\s+(?:→ ([^:]+):)?.*/) else { continue }
            let name = String(match.output.1)
            guard !name.contains("/") else { continue }  // python/serval_worker, not a Swift module
            entries[name] = match.output.2.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? []
        }
        return entries
    }
}
