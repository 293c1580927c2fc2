/// When a connection must have sent a whole request head: a client that trickles a head one byte at a time (or
/// opens a connection and sends nothing) is held only until the deadline, not for the idle timeout.
///
/// The deadline runs while the server waits for a head: from the connection's start, and from the first byte
/// of a next request once the previous one has been read whole and answered; it stops when a head has been
/// read. Requests in flight (bodies, slow models) are other limits' business. A pure state machine: the channel
/// handlers carry out its actions.
public struct HeadDeadline: Sendable, Equatable {
    /// What the connection is doing.
    public enum State: Sendable, Equatable {
        /// Waiting for a request head; `running` when the deadline is set.
        case awaitingHead(running: Bool)
        /// A request is being read or answered. `bodyComplete` once its last part was read, `responded` once its
        /// answer's last part was written, `pendingBytes` when bytes came in after its body (a next request).
        case inRequest(bodyComplete: Bool, responded: Bool, pendingBytes: Bool)
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

    /// Bytes arrived (before they are decoded).
    public mutating func bytesReceived() -> Action {
        switch state {
        case .awaitingHead(running: false):
            state = .awaitingHead(running: true)
            return .start
        case .awaitingHead(running: true):
            return .none
        case .inRequest(bodyComplete: true, let responded, _):
            state = .inRequest(bodyComplete: true, responded: responded, pendingBytes: true)
            return .none
        case .inRequest(bodyComplete: false, _, _):
            return .none  // The current request's body.
        }
    }

    /// A whole request head was read.
    public mutating func headReceived() -> Action {
        let wasRunning = state == .awaitingHead(running: true)
        state = .inRequest(bodyComplete: false, responded: false, pendingBytes: false)
        return wasRunning ? .cancel : .none
    }

    /// The request's last part (the end of its body) was read.
    public mutating func requestEnded() -> Action {
        guard case .inRequest(_, let responded, let pending) = state else { return .none }
        if responded {
            state = .awaitingHead(running: false)
            return .none
        }
        state = .inRequest(bodyComplete: true, responded: false, pendingBytes: pending)
        return .none
    }

    /// The answer's last part was written.
    public mutating func responseEnded() -> Action {
        switch state {
        case .inRequest(bodyComplete: true, _, pendingBytes: true):
            state = .awaitingHead(running: true)
            return .start
        case .inRequest(bodyComplete: true, _, pendingBytes: false):
            state = .awaitingHead(running: false)
            return .none
        case .inRequest(bodyComplete: false, _, let pending):
            // Answered before its body was read whole (an early error): the rest of the body is still to come.
            state = .inRequest(bodyComplete: false, responded: true, pendingBytes: pending)
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
