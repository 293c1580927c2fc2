/// When a connection must have sent a whole request head: a client that trickles a head one byte at a time (or
/// opens a connection and sends nothing) is held only until the deadline, not for the idle timeout.
///
/// The deadline runs while the server waits for a head: from the connection's start, and from the first byte
/// after a response has ended; it stops when a head has been read. Requests in flight (bodies, slow models) are
/// other limits' business. A pure state machine: the channel handlers carry out its actions.
public struct HeadDeadline: Sendable, Equatable {
    /// What the connection is doing.
    public enum State: Sendable, Equatable {
        /// Waiting for a request head; `running` when the deadline is set.
        case awaitingHead(running: Bool)
        /// A request is being read or answered; `pendingBytes` when bytes of a next (pipelined) request came in.
        case inRequest(pendingBytes: Bool)
    }

    /// What the handler must do.
    public enum Action: Sendable, Equatable {
        case none
        /// Set the deadline (header timeout from now).
        case start
        /// Cancel the deadline.
        case cancel
        /// The deadline passed while waiting for a head: close the connection.
        case close
    }

    /// Where the connection is.
    public private(set) var state: State

    /// A new connection: the deadline starts at once, since a client sends its request as soon as it connects.
    public init() {
        state = .awaitingHead(running: true)
    }

    /// Bytes arrived.
    public mutating func bytesReceived() -> Action {
        switch state {
        case .awaitingHead(running: false):
            state = .awaitingHead(running: true)
            return .start
        case .awaitingHead(running: true), .inRequest(pendingBytes: true):
            return .none
        case .inRequest(pendingBytes: false):
            state = .inRequest(pendingBytes: true)
            return .none
        }
    }

    /// A whole request head was read.
    public mutating func headReceived() -> Action {
        let wasRunning = state == .awaitingHead(running: true)
        state = .inRequest(pendingBytes: false)
        return wasRunning ? .cancel : .none
    }

    /// The response's last part was written: the connection waits for the next head (already arriving if
    /// `pendingBytes`).
    public mutating func responseEnded() -> Action {
        switch state {
        case .inRequest(pendingBytes: true):
            state = .awaitingHead(running: true)
            return .start
        case .inRequest(pendingBytes: false):
            state = .awaitingHead(running: false)
            return .none
        case .awaitingHead:
            return .none
        }
    }

    /// The deadline passed.
    public mutating func deadlinePassed() -> Action {
        state == .awaitingHead(running: true) ? .close : .none
    }
}
