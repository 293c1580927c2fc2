// A fixed-bucket, log-linear latency histogram (HdrHistogram-like), in nanoseconds.
//
// Values below 256 ns have one bucket each; above that, every power of two [2^e, 2^(e+1)) is cut into
// 128 equal sub-buckets, so a bucket is at most 1/128 (0.8%) of its value wide. Buckets go up to 2^40 ns
// (about 18 minutes); larger values land in the last bucket (the exact maximum is kept on the side).
// The counts live in one array allocated once per histogram: recording a value is a few integer
// operations and never allocates.

struct LatencyHistogram: Sendable {
    static let linearLimit: UInt64 = 256  // values below it are exact
    static let subBucketBits = 7  // 128 sub-buckets per power of two above linearLimit
    static let maxExponent = 40  // the last power of two with buckets: [2^40, 2^41)
    static let firstExponent = 8  // log2(linearLimit)
    static let bucketCount =
        Int(linearLimit) + (maxExponent - firstExponent + 1) << subBucketBits

    private(set) var counts: [UInt64]
    private(set) var total: UInt64 = 0
    private(set) var maxValue: UInt64 = 0

    init() {
        counts = [UInt64](repeating: 0, count: Self.bucketCount)
    }

    static func index(of value: UInt64) -> Int {
        if value < linearLimit { return Int(value) }
        let exponent = min(63 - value.leadingZeroBitCount, maxExponent)
        let clamped = exponent == maxExponent ? min(value, (UInt64(2) << maxExponent) - 1) : value
        let sub = Int(clamped >> UInt64(exponent - subBucketBits)) - (1 << subBucketBits)  // 0..<128
        return Int(linearLimit) + (exponent - firstExponent) << subBucketBits + sub
    }

    /// The highest value that falls in bucket `index` (HdrHistogram's "highest equivalent value").
    static func upperBound(of index: Int) -> UInt64 {
        if index < Int(linearLimit) { return UInt64(index) }
        let offset = index - Int(linearLimit)
        let exponent = offset >> subBucketBits + firstExponent
        let sub = UInt64(offset & ((1 << subBucketBits) - 1)) + (1 << UInt64(subBucketBits))
        let shift = UInt64(exponent - subBucketBits)
        return ((sub + 1) << shift) - 1
    }

    mutating func record(nanoseconds value: UInt64) {
        counts[Self.index(of: value)] &+= 1
        total &+= 1
        if value > maxValue { maxValue = value }
    }

    mutating func merge(_ other: LatencyHistogram) {
        for i in 0..<counts.count { counts[i] &+= other.counts[i] }
        total &+= other.total
        maxValue = max(maxValue, other.maxValue)
    }

    /// The value at `percentile` (0...100): the upper bound of the bucket holding that rank, capped at
    /// the exact maximum. nil when nothing was recorded.
    func value(atPercentile percentile: Double) -> UInt64? {
        guard total > 0 else { return nil }
        let rank = max(1, UInt64((percentile / 100 * Double(total)).rounded(.up)))
        var seen: UInt64 = 0
        for (i, count) in counts.enumerated() where count > 0 {
            seen += count
            if seen >= rank { return min(Self.upperBound(of: i), maxValue) }
        }
        return maxValue
    }
}
