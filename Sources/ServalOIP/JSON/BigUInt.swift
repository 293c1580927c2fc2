/// A small arbitrary-precision unsigned integer for the rare, slow paths of number parsing: building the
/// Eisel–Lemire table once, and comparing a decimal exactly against a binary value to break a rounding tie.
///
/// Only the operations those paths need; not a general-purpose bignum.
struct BigUInt: Comparable {
    /// Little-endian 32-bit limbs, without trailing zero limbs (zero has none).
    private(set) var limbs: [UInt32]

    /// Creates the number `value`.
    init(_ value: UInt64) {
        limbs = [UInt32(truncatingIfNeeded: value), UInt32(truncatingIfNeeded: value >> 32)]
        trim()
    }

    /// The number of significant bits; 0 for zero.
    var bitWidth: Int {
        guard let last = limbs.last else { return 0 }
        return limbs.count * 32 - last.leadingZeroBitCount
    }

    /// The low 128 bits as two words.
    var low128: (high: UInt64, low: UInt64) {
        func limb(_ index: Int) -> UInt64 { index < limbs.count ? UInt64(limbs[index]) : 0 }
        return (limb(3) << 32 | limb(2), limb(1) << 32 | limb(0))
    }

    private mutating func trim() {
        while limbs.last == 0 { limbs.removeLast() }
    }

    /// `self = self × factor + addend`.
    mutating func multiply(by factor: UInt32, adding addend: UInt32 = 0) {
        var carry = UInt64(addend)
        for index in limbs.indices {
            let product = UInt64(limbs[index]) * UInt64(factor) + carry
            limbs[index] = UInt32(truncatingIfNeeded: product)
            carry = product >> 32
        }
        if carry != 0 { limbs.append(UInt32(carry)) }
        trim()
    }

    /// `self = self × 5^exponent`.
    mutating func multiply(byPowerOfFive exponent: Int) {
        var remaining = exponent
        while remaining >= 13 {
            multiply(by: 1_220_703_125)  // 5^13, the largest power of five below 2^32
            remaining -= 13
        }
        if remaining > 0 { multiply(by: BigUInt.smallPowersOfFive[remaining]) }
    }

    /// `self = self / 5^exponent`, rounded down.
    mutating func divide(byPowerOfFive exponent: Int) {
        var remaining = exponent
        while remaining >= 13 {
            divide(by: 1_220_703_125)
            remaining -= 13
        }
        if remaining > 0 { divide(by: BigUInt.smallPowersOfFive[remaining]) }
    }

    /// `self = self / divisor`, rounded down.
    mutating func divide(by divisor: UInt32) {
        var remainder: UInt64 = 0
        for index in limbs.indices.reversed() {
            let current = remainder << 32 | UInt64(limbs[index])
            limbs[index] = UInt32(truncatingIfNeeded: current / UInt64(divisor))
            remainder = current % UInt64(divisor)
        }
        trim()
    }

    /// `self = self × 2^bits`.
    mutating func shiftLeft(by bits: Int) {
        guard !limbs.isEmpty, bits > 0 else { return }
        let bitShift = bits % 32
        if bitShift != 0 {
            var carry: UInt32 = 0
            for index in limbs.indices {
                let limb = limbs[index]
                limbs[index] = limb << bitShift | carry
                carry = limb >> (32 - bitShift)
            }
            if carry != 0 { limbs.append(carry) }
        }
        limbs.insert(contentsOf: repeatElement(0, count: bits / 32), at: 0)
    }

    /// `self = self / 2^bits`, rounded down.
    mutating func shiftRight(by bits: Int) {
        guard bits > 0 else { return }
        let limbShift = bits / 32
        guard limbShift < limbs.count else {
            limbs = []
            return
        }
        limbs.removeFirst(limbShift)
        let bitShift = bits % 32
        if bitShift != 0 {
            for index in limbs.indices {
                let high: UInt32 = index + 1 < limbs.count ? limbs[index + 1] : 0
                limbs[index] = limbs[index] >> bitShift | high << (32 - bitShift)
            }
        }
        trim()
    }

    static func < (lhs: BigUInt, rhs: BigUInt) -> Bool {
        guard lhs.limbs.count == rhs.limbs.count else { return lhs.limbs.count < rhs.limbs.count }
        for index in lhs.limbs.indices.reversed() where lhs.limbs[index] != rhs.limbs[index] {
            return lhs.limbs[index] < rhs.limbs[index]
        }
        return false
    }

    /// 5^0 … 5^13.
    private static let smallPowersOfFive: [UInt32] = {
        var powers: [UInt32] = [1]
        for _ in 1...13 { powers.append(powers.last! * 5) }
        return powers
    }()
}
