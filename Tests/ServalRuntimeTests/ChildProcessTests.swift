import Foundation
import ServalCore
import Testing

@testable import ServalRuntime

#if canImport(Glibc)
import Glibc
#endif

@Suite struct ChildProcessTests {
    /// A descriptor the test holds open, as Serval holds its listening sockets (without close-on-exec).
    private static func openInheritableDescriptor() -> Int32 {
        let descriptor = open("/dev/null", O_RDONLY)
        _ = fcntl(descriptor, F_SETFD, 0)
        return descriptor
    }

    @Test func theChildHoldsOnlyItsOwnDescriptors() async throws {
        let leaked = Self.openInheritableDescriptor()
        defer { close(leaked) }
        let result = try await runToCompletion(
            ChildLaunch(arguments: ["/bin/ls", "/proc/self/fd"], environment: ["PATH": "/usr/bin:/bin"]))
        #expect(result.status == .exited(0))
        // ls itself opens one descriptor to read the folder.
        let descriptors = result.output.split(separator: "\n").compactMap { Int($0) }.sorted()
        #expect(descriptors.count == 4 && descriptors.prefix(3) == [0, 1, 2], "\(descriptors)")
        #expect(!descriptors.dropLast().contains(Int(leaked)))
    }

    @Test func theChildGetsExactlyTheEnvironmentItIsGiven() async throws {
        let result = try await runToCompletion(
            ChildLaunch(arguments: ["env"], environment: ["PATH": "/usr/bin:/bin", "ONLY": "this"]))
        #expect(result.status == .exited(0))
        #expect(Set(result.output.split(separator: "\n").map(String.init)) == ["PATH=/usr/bin:/bin", "ONLY=this"])
    }

    @Test func theChildRunsInItsFolder() async throws {
        let result = try await runToCompletion(
            ChildLaunch(arguments: ["pwd"], environment: ["PATH": "/usr/bin:/bin"], directory: "/usr/share"))
        #expect(result.output == "/usr/share\n")
    }

    @Test func aMissingProgramIsAValidationError() async throws {
        let error = await #expect(throws: ServalError.self) {
            _ = try await ChildProcess.launch(ChildLaunch(arguments: ["serval-no-such-program"], environment: ["PATH": "/usr/bin"]))
        }
        #expect(error?.code == .validationError)
        #expect(error?.message.contains("serval-no-such-program was not found") == true)
    }

    @Test func aMissingFolderNamesIt() async throws {
        let error = await #expect(throws: ServalError.self) {
            _ = try await ChildProcess.launch(
                ChildLaunch(arguments: ["/bin/true"], environment: [:], directory: "/serval-no-such-folder"))
        }
        #expect(error?.message.contains("/serval-no-such-folder") == true)
    }

    @Test func childrenStartedFromManyTasksAllRun() async throws {
        try await withThrowingTaskGroup(of: ServalRuntime.ExitStatus.self) { group in
            for index in 0..<16 {
                group.addTask {
                    try await runToCompletion(ChildLaunch(arguments: ["/bin/sh", "-c", "exit \(index % 3)"], environment: [:])).status
                }
            }
            var statuses: [ServalRuntime.ExitStatus] = []
            for try await status in group { statuses.append(status) }
            #expect(statuses.count == 16)
            #expect(statuses.filter { $0 == .exited(0) }.count == 6)
        }
    }

    @Test(.enabled(if: geteuid() == 0, "switching users needs root"))
    func theChildRunsAsTheUserItIsGiven() async throws {
        let user = ProcessUser(name: "nobody", uid: 65534, gid: 65534)
        let result = try await runToCompletion(
            ChildLaunch(arguments: ["/bin/sh", "-c", "id -u; id -g; id -G"], environment: ["PATH": "/usr/bin:/bin"], user: user))
        #expect(result.output == "65534\n65534\n65534\n")
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs /usr/bin/python3"))
    func theChildDiesWithServalAndLeadsItsOwnGroup() async throws {
        // PR_GET_PDEATHSIG is 2; the end-to-end IsolationTests kill Serval for real.
        let probe = "import ctypes, os; v = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(v)); print(v.value, os.getpgid(0) == os.getpid())"
        let result = try await runToCompletion(ChildLaunch(arguments: ["/usr/bin/python3", "-c", probe], environment: [:]))
        #expect(result.output == "\(SIGKILL) True\n", "\(result.output)")
    }
}

@Suite struct ChildEnvironmentTests {
    @Test func onlyTheBasicsPass() {
        let server = [
            "PATH": "/bin", "LANG": "C.UTF-8", "LC_ALL": "C", "OPENBLAS_CORETYPE": "Haswell", "SERVAL_AUTH": "1",
            "AWS_SECRET_ACCESS_KEY": "s", "HOME": "/root", "PIP_INDEX_URL": "https://example.invalid",
        ]
        let worker = ChildIdentity(user: nil, home: "/srv/home").environment(.basics, from: server)
        #expect(worker == ["PATH": "/bin", "LANG": "C.UTF-8", "LC_ALL": "C", "OPENBLAS_CORETYPE": "Haswell", "HOME": "/srv/home"])
        let pip = ChildIdentity.server.environment(.packageInstalls, from: server)
        #expect(pip["PIP_INDEX_URL"] == "https://example.invalid")
        #expect(pip["HOME"] == "/root")
        #expect(pip["AWS_SECRET_ACCESS_KEY"] == nil && pip["SERVAL_AUTH"] == nil)
    }
}
