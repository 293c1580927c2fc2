import Foundation
public import ServalCore

#if canImport(Glibc)
import Glibc
#endif

/// Hands the files of a file invocation to a worker that runs as another user, who cannot reach Serval's object
/// folders: the input is hard-linked (copied when the link cannot be made) into the exchange folder under an
/// unguessable name, the output is created there for the worker's user, and after the answer the output is moved
/// to the path Serval asked for and given back to Serval's user. The exchange folder is Serval's (0700); the
/// worker's user may only pass through it, to the names it is given.
public struct FileExchange: Sendable {
    let directory: String
    let user: ProcessUser

    /// The request as the worker sees it.
    public func stage(_ request: FileInvocationRequest) throws(ServalError) -> FileInvocationRequest {
        let name = directory + "/" + UUID().uuidString.lowercased()
        var staged = request
        staged.inputPath = name + ".in"
        staged.outputPath = name + ".out"
        if link(request.inputPath, staged.inputPath) != 0 {
            do {
                try FileManager.default.copyItem(atPath: request.inputPath, toPath: staged.inputPath)
            } catch {
                throw ServalError(.internalFailure, "Cannot hand the input to the model worker: \(error.localizedDescription).")
            }
        }
        let output = open(staged.outputPath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard output >= 0, fchown(output, user.uid, user.gid) == 0 else {
            let reason = String(cString: strerror(errno))
            if output >= 0 { close(output) }
            discard(staged)
            throw ServalError(.internalFailure, "Cannot make the output file for the model worker: \(reason).")
        }
        close(output)
        return staged
    }

    /// Moves the staged output to the requested path, as Serval's own file, and removes the staged input.
    public func finish(_ staged: FileInvocationRequest, as request: FileInvocationRequest) throws(ServalError) {
        unlink(staged.inputPath)
        guard chown(staged.outputPath, geteuid(), getegid()) == 0, chmod(staged.outputPath, 0o644) == 0,
            rename(staged.outputPath, request.outputPath) == 0
        else {
            let reason = String(cString: strerror(errno))
            unlink(staged.outputPath)
            throw ServalError(.internalFailure, "Cannot take the model worker's output: \(reason).")
        }
    }

    /// Removes what ``stage(_:)`` made.
    public func discard(_ staged: FileInvocationRequest) {
        unlink(staged.inputPath)
        unlink(staged.outputPath)
    }
}
