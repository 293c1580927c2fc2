/// A JSON number as the scanner found it: its sign, its first 19 significant digits and a decimal exponent.
///
/// The value is `mantissa × 10^exponent`, exactly when `truncated` is false; otherwise nonzero digits past the 19th
/// were dropped and the value lies strictly between that and `(mantissa + 1) × 10^exponent`.
struct ScannedNumber {
    /// What kind of number the text spells.
    enum Kind {
        /// An ordinary number.
        case finite
        /// `Infinity` or `-Infinity`, as Python's `json` module writes them.
        case infinity
        /// `NaN`, as Python's `json` module writes it.
        case nan
    }

    /// The number's text, as byte offsets into the scanned JSON.
    var start: Int
    /// The offset just past the number's text.
    var end: Int
    /// The kind of number.
    var kind: Kind
    /// Whether a minus sign leads the number.
    var negative: Bool
    /// The first (up to) 19 significant digits.
    var mantissa: UInt64
    /// The power of ten that scales ``mantissa``.
    var exponent: Int
    /// Whether nonzero digits past the 19th were dropped.
    var truncated: Bool
}

/// Correctly rounded conversion of decimal numbers to binary floating point: Clinger's fast path, then
/// Eisel–Lemire, then the standard library's `strtod`-based parser for numbers with more than 19 digits that
/// Eisel–Lemire cannot settle.
///
/// Narrower formats (FP32, FP16, BF16) first try ``quickNarrow(_:to:)``, one multiplication whose result is
/// provably far enough from a rounding boundary; otherwise they round the correctly rounded double and break the
/// rare exact tie by comparing against the decimal with big integers, so nothing is ever rounded twice.
enum FloatParsing {
    /// 10^0 … 10^22, every one exact in a Double.
    private static let powersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ]

    /// The Doubles nearest to 10^0 … 10^-22 (inexact), for the approximate path of narrow formats.
    private static let reciprocalPowersOfTen: [Double] = [
        1e0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12, 1e-13, 1e-14, 1e-15, 1e-16,
        1e-17, 1e-18, 1e-19, 1e-20, 1e-21, 1e-22,
    ]

    /// 5^0 … 5^22.
    private static let powersOfFive: [UInt64] = {
        var powers: [UInt64] = [1]
        for _ in 1...22 { powers.append(powers.last! * 5) }
        return powers
    }()

    /// The Double nearest to `number`. `text` is the JSON the number was scanned from.
    @inline(__always)
    static func double(_ number: ScannedNumber, text: UnsafeRawBufferPointer) -> Double {
        let magnitude: Double
        let mantissa = number.mantissa
        let exponent = number.exponent
        if number.kind == .finite, !number.truncated, mantissa <= 1 << 53, exponent >= -22, exponent <= 22 {
            // Clinger: both operands are exact, so one IEEE operation rounds correctly.
            magnitude =
                exponent >= 0 ? Double(mantissa) * powersOfTen[exponent] : Double(mantissa) / powersOfTen[-exponent]
        } else {
            magnitude = slowPositiveDouble(number, text: text)
        }
        return number.negative ? -magnitude : magnitude
    }

    /// The bits of `number` in `Format`, when one multiplication settles them; nil otherwise, for the exact path.
    ///
    /// For up to 19 digits and exponents within ±22, the product of the mantissa and the Double nearest 10^e is
    /// within two units in the last place of the exact value, so it rounds the same way unless it lies within
    /// eight units of a midpoint of `Format`. It must also be a normal value of `Format`, not rounding to infinity.
    @inline(__always)
    static func quickNarrow<Format: NarrowFloatFormat>(_ number: ScannedNumber, to _: Format.Type) -> UInt32? {
        let mantissa = number.mantissa
        let exponent = number.exponent
        guard number.kind == .finite, !number.truncated, mantissa <= 1 << 53, exponent >= -22, exponent <= 22 else {
            return nil
        }
        let exponentBits = Format.exponentBits
        let fractionBits = Format.fractionBits
        let signBit: UInt32 = number.negative ? 1 &<< (exponentBits &+ fractionBits) : 0
        guard mantissa != 0 else { return signBit }
        let approximate =
            exponent >= 0
            ? Double(mantissa) * powersOfTen[exponent] : Double(mantissa) * reciprocalPowersOfTen[-exponent]
        let bits = approximate.bitPattern
        let maximumBiased = (1 &<< exponentBits) &- 1
        let biasedExponent = Int(bits &>> 52) &- 1023 &+ (maximumBiased &>> 1)  // in Format
        let droppedBits = 52 &- fractionBits
        let dropped = Int(bits & ((1 &<< droppedBits) &- 1))
        let half = 1 &<< (droppedBits &- 1)
        guard biasedExponent >= 1, biasedExponent < maximumBiased, abs(dropped &- half) > 8 else { return nil }
        let fraction = UInt32(truncatingIfNeeded: (bits & ((1 &<< 52) &- 1)) &>> droppedBits)
        let magnitude =
            UInt32(truncatingIfNeeded: biasedExponent) &<< fractionBits &+ fraction &+ (dropped > half ? 1 : 0)
        guard magnitude < UInt32(truncatingIfNeeded: maximumBiased) &<< fractionBits else { return nil }
        return signBit | magnitude
    }

    /// Everything Clinger's fast path leaves: specials, Eisel–Lemire, and the standard library for long numbers.
    private static func slowPositiveDouble(_ number: ScannedNumber, text: UnsafeRawBufferPointer) -> Double {
        switch number.kind {
        case .nan: return .nan
        case .infinity: return .infinity
        case .finite: break
        }
        let mantissa = number.mantissa
        let exponent = number.exponent
        guard number.truncated else { return Double(bitPattern: eiselLemire(mantissa: mantissa, exponent: exponent)) }
        // The value lies strictly between mantissa × 10^e and (mantissa + 1) × 10^e: when both round the same
        // way, so does the value.
        let low = eiselLemire(mantissa: mantissa, exponent: exponent)
        if low == eiselLemire(mantissa: mantissa + 1, exponent: exponent) { return Double(bitPattern: low) }
        let digits = UnsafeRawBufferPointer(rebasing: text[number.start..<number.end])
        return (Double(String(decoding: digits, as: UTF8.self)) ?? .nan).magnitude
    }

    /// How `number` compares with the magnitude of `value`, its nearest Double: -1, 0 or +1. Needed only when
    /// `value` is exactly halfway between two values of a narrower format: cheap when Clinger's path shows the
    /// conversion was exact, else exact with big integers.
    static func compare(_ number: ScannedNumber, text: UnsafeRawBufferPointer, with value: Double) -> Int {
        if !number.truncated, number.mantissa <= 1 << 53, number.exponent >= -22, number.exponent <= 22 {
            // mantissa × 10^e with e ≥ 0 is exact when below 2^53; mantissa / 10^k when 5^k divides the mantissa.
            let exact =
                number.exponent >= 0
                ? value.magnitude < 0x1p53 : number.mantissa % powersOfFive[-number.exponent] == 0
            if exact { return 0 }
        }
        return compare(decimal: UnsafeRawBufferPointer(rebasing: text[number.start..<number.end]), with: value)
    }

    /// The bits of the Double nearest to `mantissa × 10^exponent` (Eisel–Lemire, as in `fast_float`, whose
    /// 128-bit products need no fallback when the mantissa is exact).
    static func eiselLemire(mantissa: UInt64, exponent: Int) -> UInt64 {
        let infinity: UInt64 = 0x7FF << 52
        guard mantissa != 0, exponent >= PowersOfFive.smallestExponent else { return 0 }
        guard exponent <= PowersOfFive.largestExponent else { return infinity }
        let leadingZeros = mantissa.leadingZeroBitCount
        let normalised = mantissa << leadingZeros
        let index = 2 * (exponent - PowersOfFive.smallestExponent)
        let table = PowersOfFive.table
        var (high, low) = normalised.multipliedFullWidth(by: table[index])
        let precisionMask: UInt64 = .max >> 55  // 52 mantissa bits + 3
        if high & precisionMask == precisionMask {
            let (secondHigh, _) = normalised.multipliedFullWidth(by: table[index + 1])
            let (sum, overflow) = low.addingReportingOverflow(secondHigh)
            low = sum
            if overflow { high &+= 1 }
        }
        let upperBit = Int(high >> 63)
        let shift = upperBit + 64 - 52 - 3
        var result = high >> shift
        // floor(exponent × log2(10)) + 63, then the binary exponent's bias.
        var power2 = (((152_170 + 65_536) * exponent) >> 16) + 63 + upperBit - leadingZeros + 1023
        if power2 <= 0 {
            // Subnormal, or a normal only after rounding.
            guard -power2 + 1 < 64 else { return 0 }
            result >>= UInt64(-power2 + 1)
            result += result & 1
            result >>= 1
            power2 = result < 1 << 52 ? 0 : 1
            return UInt64(power2) << 52 | result
        }
        // Exactly halfway between two doubles: round to even instead of up.
        if low <= 1, exponent >= -4, exponent <= 23, result & 3 == 1, result << shift == high {
            result &= ~1
        }
        result += result & 1
        result >>= 1
        if result >= 2 << 52 {
            result = 1 << 52
            power2 += 1
        }
        result &= ~(1 << 52)
        guard power2 < 0x7FF else { return infinity }
        return UInt64(power2) << 52 | result
    }

    /// The bits of `value` rounded to nearest, ties to even, in `Format`; `nil` when it overflows to infinity.
    /// `value` must be finite.
    ///
    /// `value` is the correctly rounded double of some decimal; when it lies exactly halfway between two values of
    /// the narrow format, `compareDecimal` decides: it returns how the decimal compares with `value`'s magnitude
    /// (-1, 0, +1).
    static func narrow<Format: NarrowFloatFormat>(
        _ value: Double, to _: Format.Type, compareDecimal: () -> Int
    ) -> UInt32? {
        let exponentBits = Format.exponentBits
        let fractionBits = Format.fractionBits
        let signBit: UInt32 = value.sign == .minus ? 1 << (exponentBits + fractionBits) : 0
        let bits = value.bitPattern & ~(1 << 63)
        let biasedExponent = Int(bits >> 52)
        // Zero and double subnormals, far below half the narrow format's smallest subnormal.
        guard biasedExponent != 0 else { return signBit }
        let bias = (1 << (exponentBits - 1)) - 1
        let exponent = biasedExponent - 1023
        guard exponent <= bias else { return nil }
        let significand = bits & ((1 << 52) - 1) | 1 << 52  // value = significand × 2^(exponent − 52)
        let minimumExponent = 1 - bias
        let shift = (max(exponent, minimumExponent) - fractionBits) - (exponent - 52)
        // Below half the smallest subnormal: rounds to zero.
        guard shift < 54 else { return signBit }
        let quotient = significand >> shift
        let remainder = significand & ((1 << shift) - 1)
        let half: UInt64 = 1 << (shift - 1)
        // Magnitudes are ordered like their bit patterns, so rounding up is adding one.
        let truncated: UInt32 =
            exponent >= minimumExponent
            ? UInt32((exponent + bias - 1) << fractionBits) + UInt32(quotient) : UInt32(quotient)
        let roundUp: Bool
        if remainder != half {
            roundUp = remainder > half
        } else {
            let comparison = compareDecimal()
            roundUp = comparison == 0 ? truncated & 1 == 1 : comparison > 0
        }
        let magnitude = truncated + (roundUp ? 1 : 0)
        let infinity = UInt32((1 << exponentBits) - 1) << fractionBits
        guard magnitude < infinity else { return nil }
        return signBit | magnitude
    }

    /// How the decimal number spelled by `text` compares with the magnitude of the finite double `value`: -1, 0
    /// or +1. Exact, with big integers; slow, for rounding ties only.
    static func compare(decimal text: UnsafeRawBufferPointer, with value: Double) -> Int {
        let maximumDigits = 800
        var digits = BigUInt(0)
        var chunk: UInt32 = 0
        var chunkLength = 0
        var taken = 0
        var exponent = 0
        var tailIsNonzero = false
        var inFraction = false
        var index = 0
        if index < text.count, text[index] == UInt8(ascii: "-") { index += 1 }
        scan: while index < text.count {
            let byte = text[index]
            switch byte {
            case UInt8(ascii: "."): inFraction = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                let digit = UInt32(byte &- UInt8(ascii: "0"))
                if taken == 0, digit == 0 {
                    if inFraction { exponent -= 1 }
                } else if taken < maximumDigits {
                    chunk = chunk * 10 + digit
                    chunkLength += 1
                    taken += 1
                    if inFraction { exponent -= 1 }
                    if chunkLength == 9 {
                        digits.multiply(by: 1_000_000_000, adding: chunk)
                        chunk = 0
                        chunkLength = 0
                    }
                } else {
                    if !inFraction { exponent += 1 }
                    if digit != 0 { tailIsNonzero = true }
                }
            default: break scan
            }
            index += 1
        }
        var power: UInt32 = 1
        for _ in 0..<chunkLength { power *= 10 }
        digits.multiply(by: power, adding: chunk)
        if index < text.count {
            // The exponent part: e, an optional sign, digits.
            index += 1
            var negative = false
            if text[index] == UInt8(ascii: "-") || text[index] == UInt8(ascii: "+") {
                negative = text[index] == UInt8(ascii: "-")
                index += 1
            }
            var explicit = 0
            while index < text.count, explicit < 1 << 40 {
                explicit = explicit * 10 + Int(text[index] &- UInt8(ascii: "0"))
                index += 1
            }
            exponent += negative ? -explicit : explicit
        }
        // decimal = digits × 10^exponent; value = significand × 2^binaryExponent.
        let bits = value.bitPattern & ~(1 << 63)
        let biasedExponent = Int(bits >> 52)
        let significand = biasedExponent == 0 ? bits : bits & ((1 << 52) - 1) | 1 << 52
        let binaryExponent = (biasedExponent == 0 ? 1 : biasedExponent) - 1075
        var lhs = digits
        var rhs = BigUInt(significand)
        var lhsTwos = 0
        var rhsTwos = binaryExponent
        if exponent >= 0 {
            lhs.multiply(byPowerOfFive: exponent)
            lhsTwos += exponent
        } else {
            rhs.multiply(byPowerOfFive: -exponent)
            rhsTwos -= exponent
        }
        if lhsTwos > rhsTwos { lhs.shiftLeft(by: lhsTwos - rhsTwos) } else { rhs.shiftLeft(by: rhsTwos - lhsTwos) }
        if lhs < rhs { return -1 }
        if rhs < lhs { return 1 }
        return tailIsNonzero ? 1 : 0
    }
}

/// A binary floating-point format narrower than Double.
protocol NarrowFloatFormat {
    /// The format's bits.
    associatedtype Word: FixedWidthInteger
    /// The width of the exponent field.
    static var exponentBits: Int { get }
    /// The width of the fraction field.
    static var fractionBits: Int { get }
    /// The largest finite value, for messages.
    static var largestFinite: String { get }
}

extension NarrowFloatFormat {
    /// The bits of positive infinity.
    static var infinityBits: UInt32 { UInt32((1 << exponentBits) - 1) << fractionBits }
    /// The bits of the canonical quiet NaN.
    static var nanBits: UInt32 { infinityBits | 1 << (fractionBits - 1) }
    /// The bits of the sign.
    static var signBit: UInt32 { 1 << (exponentBits + fractionBits) }
}

/// IEEE 754 binary32 (FP32).
enum Binary32: NarrowFloatFormat {
    typealias Word = UInt32
    static var exponentBits: Int { 8 }
    static var fractionBits: Int { 23 }
    static var largestFinite: String { "3.4028235e+38" }
}

/// IEEE 754 binary16 (FP16).
enum Binary16: NarrowFloatFormat {
    typealias Word = UInt16
    static var exponentBits: Int { 5 }
    static var fractionBits: Int { 10 }
    static var largestFinite: String { "65504" }
}

/// bfloat16 (BF16): binary32's exponent with 7 fraction bits.
enum BFloat16: NarrowFloatFormat {
    typealias Word = UInt16
    static var exponentBits: Int { 8 }
    static var fractionBits: Int { 7 }
    static var largestFinite: String { "3.3895314e+38" }
}
