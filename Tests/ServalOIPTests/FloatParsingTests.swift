import Foundation
import NIOCore
import ServalCore
import ServalOIP
import ServalFuzzSupport
import Testing

/// Decodes `texts` as the elements of one input of `datatype` and returns the words of its data.
func parseFloats<Word: FixedWidthInteger>(_ texts: [String], _ datatype: String, as _: Word.Type) throws -> [Word] {
    let request = try decode(oneInput(datatype, shape: [texts.count], data: "[" + texts.joined(separator: ",") + "]"))
    return words(request.request.inputs[0].data, as: Word.self)
}

/// Random decimal strings in JSON syntax: up to `maxDigits` digits, a decimal point somewhere or nowhere, an
/// exponent in `exponents` or none.
func randomDecimals(count: Int, maxDigits: Int, exponents: ClosedRange<Int>, seed: UInt64) -> [String] {
    var random = SeededGenerator(seed: seed)
    var texts: [String] = []
    for _ in 0..<count {
        let digitCount = Int.random(in: 1...maxDigits, using: &random)
        var digits = (0..<digitCount).map { _ in Character(String(Int.random(in: 0...9, using: &random))) }
        if digits.count > 1, digits[0] == "0" { digits[0] = "1" }
        var text = Bool.random(using: &random) ? "-" : ""
        if digitCount > 1, Bool.random(using: &random) {
            let point = Int.random(in: 1..<digitCount, using: &random)
            text += String(digits[..<point]) + "." + String(digits[point...])
        } else {
            text += String(digits)
        }
        if Bool.random(using: &random) { text += "e\(Int.random(in: exponents, using: &random))" }
        texts.append(text)
    }
    return texts
}

/// The exact decimal expansion of a finite double, from printf (which glibc and Darwin print exactly).
func exactDecimal(_ value: Double) -> (mantissa: String, exponent: String) {
    let text = String(format: "%.200e", value)
    let parts = text.split(separator: "e")
    var mantissa = String(parts[0])
    while mantissa.hasSuffix("0") { mantissa.removeLast() }
    if mantissa.hasSuffix(".") { mantissa.removeLast() }
    return (mantissa, "e" + parts[1])
}

/// Decimals exactly at, just above and just below `midpoint`, far closer to it than a Double can tell apart.
func aroundMidpoint(_ midpoint: Double) -> (at: String, above: String, below: String) {
    let (mantissa, exponent) = exactDecimal(midpoint)
    let withPoint = mantissa.contains(".") ? mantissa : mantissa + "."
    let above = withPoint + "0000000000000000000000000000001" + exponent
    var digits = Array(mantissa)
    let last = digits.removeLast().wholeNumberValue!
    let below =
        String(digits) + String(last - 1) + (mantissa.contains(".") ? "" : ".") + "99999999999999999999999999"
        + exponent
    return (mantissa + exponent, above, below)
}

@Suite("Float parsing: correctly rounded in every format")
struct FloatParsingTests {
    static let trickyDoubles = [
        "0", "-0", "-0.0", "0e10", "0.0e-999", "1", "-1", "0.1", "0.2", "0.30000000000000004", "1e23", "1E5", "1e+5",
        "123.456e-2", "8.98846567431158e307", "1.7976931348623157e308", "1.7976931348623158e308",
        "2.2250738585072011e-308", "2.2250738585072012e-308", "2.2250738585072014e-308", "4.9406564584124654e-324",
        "5e-324", "2.4703282292062327e-324", "2.4703282292062328e-324", "1e-400", "9007199254740992",
        "9007199254740993", "9007199254740995", "9007199254740993.0000000001", "123456789012345678901234567890",
        "0.000000000000000000000000000001", "7.3177701707893310e+15",
        "1.00000000000000011102230246251565404236316680908203125",
        "1.00000000000000011102230246251565404236316680908203124",
        "1.00000000000000011102230246251565404236316680908203126",
        "9999999999999999999", "18446744073709551615", "18446744073709551616", "4.35004796885838e-311",
        "6.9294956446009195e15", "7.0420557077594588e-53", "1448997445238699", "3.14159265358979323846264338327950288",
        "2.718281828459045235360287471352662497757", "1e22", "1e-22", "123456789012345678e-30", "0.1e-340",
        "179769313486231580793728971405301e276",
        "4.4501477170144022721148195934182639518696390927032912960468522194496444440421538910330590478162701758282983178260792422137401728773891892910553144148156412434867599762821265346585071045737627442980259622449029037796981144446145705102663115100318287949527959668236039986479250965780342141637013812613333119898765515451440315261253813266652951306000184917766328660755595837392240989947807556594098101021612198814605258742579179000071675999344145086087205681577915435923018910334964869420614052182892431445797605163650903606514140377217442262561590244668525767372446430075513332450079650686719491377688478005309963967709758965844137894433796621993967316936280457084866613206797017728916080020698679408551343728867675409720757232455434770912461317493580281734466552734375e-308",
    ]

    @Test("FP64: tricky decimals match strtod")
    func trickyDoubles() throws {
        let parsed = try parseFloats(Self.trickyDoubles, "FP64", as: UInt64.self)
        for (text, bits) in zip(Self.trickyDoubles, parsed) {
            #expect(
                bits == Double(text)!.bitPattern, "\(text) → \(Double(bitPattern: bits)), strtod says \(Double(text)!)")
        }
    }

    @Test(
        "FP64: a thousand-digit number, and numbers that overflow, are handled",
        arguments: [
            ("1" + String(repeating: "0", count: 1_000), false), ("1e309", false), ("-1e400", false),
            ("0." + String(repeating: "0", count: 1_000) + "1", true),
        ])
    func extremeDoubles(text: String, fits: Bool) throws {
        let result = Result { try parseFloats([text], "FP64", as: UInt64.self) }
        if fits {
            #expect(try result.get() == [Double(text)!.bitPattern])
        } else {
            #expect(throws: ServalError.self) { try result.get() }
        }
    }

    @Test(
        "FP64: random decimals match strtod (Clinger, Eisel–Lemire and the fallback)",
        arguments: [
            (25, -30...30), (19, -350...310), (40, -400...330), (17, -10...10),
        ])
    func randomDoubles(maxDigits: Int, exponents: ClosedRange<Int>) throws {
        let texts = randomDecimals(count: 40_000, maxDigits: maxDigits, exponents: exponents, seed: UInt64(maxDigits))
            .filter { Double($0)!.isFinite }
        let parsed = try parseFloats(texts, "FP64", as: UInt64.self)
        var mismatches = 0
        for (text, bits) in zip(texts, parsed) where bits != Double(text)!.bitPattern {
            mismatches += 1
            if mismatches < 10 { Issue.record("\(text) → \(Double(bitPattern: bits)), strtod says \(Double(text)!)") }
        }
        #expect(mismatches == 0)
    }

    @Test("FP64: every double's shortest description reads back exactly")
    func doubleDescriptions() throws {
        var random = SeededGenerator(seed: 64)
        let values = (0..<50_000).map { _ in Double(bitPattern: random.next()) }.filter(\.isFinite)
        let parsed = try parseFloats(values.map(\.description), "FP64", as: UInt64.self)
        #expect(parsed == values.map(\.bitPattern))
    }

    @Test("FP32: tricky decimals match strtof, with no double rounding")
    func trickyFloats() throws {
        let texts = [
            "16777217", "16777219", "16777216.000000001", "3.4028235e38", "3.4028234663852886e38",
            "1.17549435e-38", "1.4e-45", "7.1e-46", "0.1", "1.000000059604644775390625", "1.0000000596046448",
            "1.00000005960464477539062499", "1.000000059604644775390625000000001", "0.30000001192092896",
            "7.006492321624085354618e-46", "7.006492321624085354619e-46", "1e-50", "-2.5e-45",
        ]
        let parsed = try parseFloats(texts, "FP32", as: UInt32.self)
        for (text, bits) in zip(texts, parsed) {
            #expect(
                bits == Float(text)!.bitPattern, "\(text) → \(Float(bitPattern: bits)), strtof says \(Float(text)!)")
        }
        // The double nearest 1.0000000596046448 is exactly halfway between two floats; the decimal is above it.
        #expect(parsed[10] == Float(1).nextUp.bitPattern)
    }

    @Test("FP32: random decimals match strtof")
    func randomFloats() throws {
        let texts = randomDecimals(count: 60_000, maxDigits: 22, exponents: -50...40, seed: 32)
            .filter { Float($0)!.isFinite }
        let parsed = try parseFloats(texts, "FP32", as: UInt32.self)
        var mismatches = 0
        for (text, bits) in zip(texts, parsed) where bits != Float(text)!.bitPattern {
            mismatches += 1
            if mismatches < 10 { Issue.record("\(text) → \(Float(bitPattern: bits)), strtof says \(Float(text)!)") }
        }
        #expect(mismatches == 0)
    }

    @Test("FP32: decimals at, above and below random midpoints round correctly")
    func floatMidpoints() throws {
        var random = SeededGenerator(seed: 3232)
        var texts: [String] = []
        var expected: [UInt32] = []
        for _ in 0..<3_000 {
            let low = Float(bitPattern: UInt32.random(in: 0..<0x7F7F_FFFF, using: &random))
            let high = low.nextUp
            let (at, above, below) = aroundMidpoint((Double(low) + Double(high)) / 2)
            texts += [at, above, below]
            expected += [low.bitPattern & 1 == 0 ? low.bitPattern : high.bitPattern, high.bitPattern, low.bitPattern]
        }
        let parsed = try parseFloats(texts, "FP32", as: UInt32.self)
        #expect(parsed == expected)
        #expect(expected == texts.map { Float($0)!.bitPattern })
    }

    /// Checks every positive finite value of a 16-bit format, and the decimals at, just above and just below each
    /// midpoint between neighbours.
    func checkEveryValue(_ datatype: String, count: UInt16, value: (UInt16) -> Double, stride: Int) throws {
        var texts: [String] = []
        var expected: [UInt16] = []
        for bits in Swift.stride(from: 0, to: Int(count) - 1, by: stride).map(UInt16.init) {
            let low = value(bits)
            texts.append(low.description)
            expected.append(bits)
            texts.append("-" + low.description)
            expected.append(bits | 0x8000)
            let (at, above, below) = aroundMidpoint((low + value(bits + 1)) / 2)
            texts += [at, above, below]
            expected += [bits & 1 == 0 ? bits : bits + 1, bits + 1, bits]
        }
        let parsed = try parseFloats(texts, datatype, as: UInt16.self)
        var mismatches = 0
        for (index, (bits, want)) in zip(parsed, expected).enumerated() where bits != want {
            mismatches += 1
            if mismatches < 10 {
                Issue.record("\(texts[index]) → 0x\(String(bits, radix: 16)), want 0x\(String(want, radix: 16))")
            }
        }
        #expect(mismatches == 0)
    }

    @Test("FP16: every value, and every midpoint exactly and just off it")
    func everyHalf() throws {
        try checkEveryValue(
            "FP16", count: 0x7C00,
            value: { bits in
                let exponent = Int(bits >> 10)
                let fraction = Double(bits & 0x3FF)
                return exponent == 0 ? fraction * 0x1p-24 : (1 + fraction / 1024) * pow(2, Double(exponent - 15))
            }, stride: 1)
    }

    @Test("BF16: values and midpoints across the whole range")
    func everyBFloat() throws {
        try checkEveryValue("BF16", count: 0x7F80, value: { Double(Float(bitPattern: UInt32($0) << 16)) }, stride: 7)
    }

    @Test(
        "16-bit formats overflow past their largest value, and underflow to zero",
        arguments: [
            ("FP16", "65519.99", UInt16(0x7BFF)), ("FP16", "1e-9", 0), ("FP16", "-1e-9", 0x8000),
            ("FP16", "5.960464477539063e-08", 1), ("BF16", "3.3895313892515355e38", 0x7F7F), ("BF16", "1", 0x3F80),
        ])
    func sixteenBitEdges(datatype: String, text: String, bits: UInt16) throws {
        #expect(try parseFloats([text], datatype, as: UInt16.self) == [bits])
    }

    @Test(
        "overflowing decimals are rejected, naming the element and the range",
        arguments: [
            ("FP16", "65520"), ("FP16", "1e5"), ("BF16", "3.4e38"), ("FP32", "3.5e38"), ("FP32", "-1e39"),
            ("FP64", "2e308"),
        ])
    func overflowRejected(datatype: String, text: String) {
        expectRejected(
            oneInput(datatype, shape: [2], data: "[0, \(text)]"), "element 1", "out of range for \(datatype)", text)
    }

    @Test(
        "NaN, Infinity and -Infinity, as Python writes them, are accepted by the float types",
        arguments: [
            "FP16", "BF16", "FP32", "FP64",
        ])
    func specialValues(datatype: String) throws {
        let request = try decode(oneInput(datatype, shape: [3], data: "[NaN, Infinity, -Infinity]"))
        let data = request.request.inputs[0].data
        let values: [Double] =
            switch datatype {
            case "FP64": words(data, as: UInt64.self).map { Double(bitPattern: $0) }
            case "FP32": words(data, as: UInt32.self).map { Double(Float(bitPattern: $0)) }
            case "BF16": words(data, as: UInt16.self).map { Double(Float(bitPattern: UInt32($0) << 16)) }
            default:
                words(data, as: UInt16.self).map { [0x7E00: Double.nan, 0x7C00: .infinity, 0xFC00: -.infinity][$0]! }
            }
        #expect(values[0].isNaN)
        #expect(values[1] == .infinity)
        #expect(values[2] == -.infinity)
    }
}
