import Foundation
import ServalArtifacts
import ServalFuzzSupport
import Testing

/// Seeded random archives: valid packages and path tricks, mutated (bit flips, with and without a fixed checksum,
/// giant sizes, hostile names and types, truncation, repeated blocks), and the seeds compressed then mutated.
/// Each must be stored or refused with a ``PackageError`` within a second or so, leave nothing outside the data
/// folder, and, when stored, stay inside its package folder and within the limits. `SERVAL_FUZZ_SECONDS` extends
/// the run; a failure names the seed that `SERVAL_FUZZ_SEED` replays.
@Suite("PackageStore: fuzzing")
struct PackageStoreFuzzTests {
    static let maxPackageBytes: Int64 = 256 * 1024
    static let maxEntries = 64

    /// Names that try to leave the destination or confuse the path logic.
    static let hostileNames = [
        "../evil", "/tmp/serval-fuzz-evil", "a/../../evil", "./../evil", "link/evil", "up/evil", "loop/x", "",
        ".", "./", "//", "a//b", String(repeating: "n", count: 99), String(repeating: "d/", count: 49) + "f",
        "model.joblib/x", "code", "code/inference.py/..", "\u{0}x",
    ]

    /// Valid archives, and ones that try a trick after a valid start.
    static let seeds: [[UInt8]] = {
        var seeds = [sklearnPackage().archive]
        var tricks = TarBuilder()
        tricks.file("model.joblib", "m")
        tricks.directory("dir")
        tricks.symlink("link", to: "dir")
        tricks.file("link/through", "x")
        tricks.symlink("up", to: "..")
        tricks.symlink("loop", to: "loop")
        tricks.file("up/evil", "x")
        seeds.append(tricks.archive)
        var long = TarBuilder()
        long.file("model.joblib", "m")
        long.gnuLongEntry(String(repeating: "long/", count: 40) + "file", contents: Array("x".utf8))
        long.gnuLongEntry(String(repeating: "l", count: 150), type: .symlink, linkName: String(repeating: "../", count: 60))
        seeds.append(long.archive)
        var pax = TarBuilder()
        pax.file("model.joblib", "m")
        pax.paxEntry([("path", "pax/" + String(repeating: "p", count: 200))], contents: Array("y".utf8))
        pax.paxEntry([("path", "paxlink"), ("linkpath", "../../outside")], type: .symlink)
        pax.record(type: .paxGlobal, TarBuilder.paxRecord(key: "comment", value: "global"))
        pax.file("after", "z")
        seeds.append(pax.archive)
        return seeds
    }()

    static let gzippedSeeds: [[UInt8]] = seeds.map { (try? gzip($0)) ?? [] }

    @Test("mutated archives are stored within bounds or refused, and never write outside the data folder")
    func mutatedArchives() throws {
        var inputs = 0
        for seed in FuzzSeeds("PackageStore") {
            var random = SeededGenerator(seed: seed)
            let archive = Self.mutatedArchive(&random)
            let sandbox = try Sandbox()
            var store = sandbox.store
            store.maxPackageBytes = Self.maxPackageBytes
            store.maxEntries = Self.maxEntries
            let path = try sandbox.write(archive)
            let started = ContinuousClock.now
            let result = Result { () throws(PackageError) in try store.storeArchive(at: path, modelName: "m") }
            let elapsed = ContinuousClock.now - started
            #expect(elapsed < .seconds(5), "seed \(seed): took \(elapsed)")
            switch result {
            case .success(let stored):
                checkStored(stored, in: sandbox, seed: seed)
            case .failure(let error):
                if case .io = error { Issue.record("seed \(seed): an I/O failure, not a refusal: \(error)") }
                #expect(sandbox.tree() == sandbox.untouchedTree, "seed \(seed): a refused archive left files")
            }
            inputs += 1
        }
        print("fuzz PackageStore: \(inputs) archives")
    }

    /// A stored package lies in its folder, within the limits, with links that resolve inside it.
    private func checkStored(_ stored: StoredPackage, in sandbox: Sandbox, seed: UInt64) {
        let package = "data/" + stored.relativePath
        var ancestors = Set(["data", "data/staging", "in", "in/package"])
        var folder = package
        while let slash = folder.lastIndex(of: "/") {
            folder = String(folder[..<slash])
            ancestors.insert(folder)
        }
        for path in sandbox.tree() where !ancestors.contains(path) && path != package {
            #expect(path.hasPrefix(package + "/"), "seed \(seed): \(path) is outside the package folder \(package)")
        }
        let root = sandbox.root + "/" + package
        let entries = listing(of: root)
        #expect(entries.count <= Self.maxEntries, "seed \(seed): \(entries.count) entries")
        var bytes: Int64 = 0
        for entry in entries {
            switch entry.kind {
            case .file(let contents, _): bytes += Int64(contents.count)
            case .symlink(let target):
                let full = root + "/" + entry.path
                let lexical = URL(fileURLWithPath: full).deletingLastPathComponent().appendingPathComponent(target)
                    .standardizedFileURL.path
                let real = URL(fileURLWithPath: full).resolvingSymlinksInPath().path
                for resolved in [lexical, real] {
                    #expect(resolved == root || resolved.hasPrefix(root + "/"), "seed \(seed): \(entry) leads to \(resolved)")
                }
            case .directory: break
            case .other: Issue.record("seed \(seed): \(entry) is neither file, folder nor link")
            }
        }
        #expect(bytes <= Self.maxPackageBytes, "seed \(seed): \(bytes) bytes stored")
    }

    // MARK: Mutations

    static func mutatedArchive(_ random: inout SeededGenerator) -> [UInt8] {
        let index = Int.random(in: 0..<seeds.count, using: &random)
        var archive = seeds[index]
        for _ in 0..<Int.random(in: 1...4, using: &random) { mutate(&archive, &random) }
        // A fresh gzip per input would cost a process; the compressed seeds, mutated, exercise the decoder.
        guard random.oneIn(4) else { return archive }
        archive = gzippedSeeds[index]
        if random.oneIn(2) { flipBits(&archive, &random) }
        if random.oneIn(2) { archive.removeLast(Int.random(in: 0...archive.count, using: &random)) }
        return archive
    }

    private static func mutate(_ archive: inout [UInt8], _ random: inout SeededGenerator) {
        let headers = stride(from: 0, to: archive.count - 511, by: 512).filter {
            archive[($0 + 257)..<($0 + 262)].elementsEqual("ustar".utf8)
        }
        guard let header = headers.randomElement(using: &random) else { return flipBits(&archive, &random) }
        func rewrite(_ offset: Int, _ field: [UInt8], width: Int) {
            for index in 0..<width { archive[header + offset + index] = index < field.count ? field[index] : 0 }
            archive.replaceSubrange(header..<(header + 512), with: TarBuilder.withChecksum(Array(archive[header..<(header + 512)])))
        }
        switch Int.random(in: 0..<8, using: &random) {
        case 0: flipBits(&archive, &random)
        case 1:
            archive[header + Int.random(in: 0..<512, using: &random)] ^= 1 << UInt8.random(in: 0...7, using: &random)
            rewrite(0, Array(archive[header..<(header + 100)]), width: 100)
        case 2:
            let giant: [UInt8] = random.oneIn(2)
                ? Array("77777777777".utf8) + [0]
                : [0x80] + (0..<11).map { _ in UInt8.random(in: 0...255, using: &random) }
            rewrite(124, giant, width: 12)
        case 3: rewrite(0, Array(hostileNames.randomElement(using: &random)!.utf8.prefix(100)), width: 100)
        case 4: rewrite(157, Array(hostileNames.randomElement(using: &random)!.utf8.prefix(100)), width: 100)
        case 5: rewrite(156, [Array("0125LKxg7346A".utf8).randomElement(using: &random)!], width: 1)
        case 6: archive.removeLast(Int.random(in: 0...archive.count, using: &random))
        default:
            let block = Array(archive[header..<min(archive.count, header + 1024)])
            archive.insert(contentsOf: block, at: headers.randomElement(using: &random)!)
        }
    }

    private static func flipBits(_ archive: inout [UInt8], _ random: inout SeededGenerator) {
        guard !archive.isEmpty else { return }
        for _ in 0..<Int.random(in: 1...8, using: &random) {
            archive[Int.random(in: 0..<archive.count, using: &random)] ^= 1 << UInt8.random(in: 0...7, using: &random)
        }
    }
}
