/// A `Range: bytes=...` request header, as S3 accepts it: one range, `a-b`, `a-` or `-n`.
public enum S3Range: Equatable, Sendable {
    /// `bytes=first-[last]`.
    case from(Int64, through: Int64?)
    /// `bytes=-count`: the last `count` bytes.
    case suffix(Int64)

    /// Parses the header; `nil` when it is not a single byte range, which S3 ignores (answering the whole object).
    public init?(header: String) {
        guard header.hasPrefix("bytes=") else { return nil }
        let spec = header.dropFirst("bytes=".count).trimmingCharacters(in: " ")
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return nil }
        let first = spec[..<dash]
        let last = spec[spec.index(after: dash)...]
        func number(_ text: Substring) -> Int64? {
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            return Int64(text)
        }
        if first.isEmpty {
            guard let count = number(last) else { return nil }
            self = .suffix(count)
        } else {
            guard let start = number(first) else { return nil }
            if last.isEmpty {
                self = .from(start, through: nil)
            } else {
                guard let end = number(last), end >= start else { return nil }
                self = .from(start, through: end)
            }
        }
    }

    /// The bytes selected from an object of `size` bytes, or `nil` when none can be (S3 answers 416 InvalidRange).
    public func resolve(size: Int64) -> ClosedRange<Int64>? {
        switch self {
        case .from(let start, let end):
            guard start < size else { return nil }
            return start...min(end ?? size - 1, size - 1)
        case .suffix(let count):
            guard count > 0, size > 0 else { return nil }
            return max(0, size - count)...(size - 1)
        }
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in character: Character) -> Substring {
        var text = Substring(self)
        while text.first == character { text.removeFirst() }
        while text.last == character { text.removeLast() }
        return text
    }
}
