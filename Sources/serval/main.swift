import ArgumentParser
import NIOCore
import NIOPosix

// Run Swift concurrency on NIO's event-loop threads: request handlers, the batcher and the worker channels
// then share threads instead of handing every request between two pools (measured in bench/). It must
// happen on the main thread before any task runs.
NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
await Serval.start()

extension Serval {
    /// Parses the command line and runs the command, asynchronously.
    static func start() async {
        let command: any AsyncParsableCommand.Type = Serval.self
        await command.main()
    }
}
