import Foundation
public import ServalCore

/// The machine's wall clock.
public struct SystemClock: WallClock {
    /// Creates the clock.
    public init() {}

    public func now() -> Timestamp {
        Timestamp(millisecondsSinceEpoch: Int64((Date().timeIntervalSince1970 * 1000).rounded()))
    }
}
