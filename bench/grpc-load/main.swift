// serval-grpc-load: the gRPC load generator of bench/ (see bench/README.md).
//
// C callers send unary inference.GRPCInferenceService/ModelInfer requests back to back, each waiting
// for its answer before sending the next (a closed loop, like wrk's connections). gRPC multiplexes
// calls on HTTP/2 connections: the callers share ceil(C / 16) connections (1 at C = 1 and 16, 4 at
// C = 64; --connections overrides), caller i using connection i mod K. Each connection is its own
// GRPCClient with its own transport, so it really is a separate TCP connection.
//
// The run is `--warmup` seconds of load, discarded, then `--duration` seconds measured: a request
// counts when it completes inside the measured window (whenever it started), so requests/s is
// completions per second of the window; its latency is recorded in the caller's own fixed-bucket
// histogram (Histogram.swift), merged at the end. Requests still in flight when the window closes are
// awaited and dropped. A request that fails (any RPC error, including the deadline) counts as an
// error, not a latency; the first error's code and message are printed. Calls carry no deadline unless
// --timeout is given (grpc-swift runs a timer task per call for one, on both sides); instead a watchdog
// cancels the calls still pending --timeout (or 10) seconds after the window, counted as errors.

import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import ServalOIPProto
import SwiftProtobuf

let options = parseOptions(Array(CommandLine.arguments.dropFirst()))

// --- The request: one row (or --rows rows) of seeded random values, in raw_input_contents ------------

struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-3, 3), about the range of standardised features.
    mutating func nextValue() -> Double { Double(next() >> 11) / Double(1 << 53) * 6 - 3 }
}

func makeRequest(_ options: Options) -> Inference_ModelInferRequest {
    var random = SplitMix64(state: options.seed)
    let count = options.rows * options.features
    var bytes = [UInt8]()
    bytes.reserveCapacity(count * 8)
    for _ in 0..<count {
        let value = random.nextValue()
        if options.datatype == "FP32" {
            withUnsafeBytes(of: Float(value).bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        } else {
            withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        }
    }
    return Inference_ModelInferRequest.with {
        $0.modelName = options.model
        $0.modelVersion = options.modelVersion
        $0.inputs = [.with {
            $0.name = options.inputName
            $0.datatype = options.datatype
            $0.shape = [Int64(options.rows), Int64(options.features)]
        }]
        $0.outputs = options.outputs.map { name in .with { $0.name = name } }
        $0.rawInputContents = [Data(bytes)]
    }
}

// --- Helpers ----------------------------------------------------------------------------------------

func nanoseconds(_ duration: Duration) -> UInt64 {
    let (seconds, attoseconds) = duration.components
    return UInt64(max(0, seconds)) &* 1_000_000_000 &+ UInt64(max(0, attoseconds) / 1_000_000_000)
}

func describe(_ error: any Error) -> String {
    if let rpc = error as? RPCError {
        return "\(rpc.code): \(rpc.message)" + (rpc.cause.map { " (cause: \($0))" } ?? "")
    }
    return "\(error)"
}

func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

func jsonNumber(_ value: Double?, decimals: Int = 3) -> String {
    guard let value, value.isFinite else { return "null" }
    return String(format: "%.\(decimals)f", value)
}

/// The values of an output tensor, from raw_output_contents (or the typed contents), as JSON.
func outputData(_ output: Inference_ModelInferResponse.InferOutputTensor, raw: Data?) -> String {
    func decode<T>(_ size: Int, _ make: (UnsafeRawBufferPointer, Int) -> T) -> [T] {
        guard let raw else { return [] }
        return raw.withUnsafeBytes { buffer in (0..<buffer.count / size).map { make(buffer, $0 * size) } }
    }
    let values: [String]
    switch output.datatype {
    case "FP32":
        values = decode(4) { b, o in Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt32.self))) }
            .map { "\($0)" }
    case "FP64":
        values = decode(8) { b, o in Double(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt64.self))) }
            .map { "\($0)" }
    case "INT64":
        values = decode(8) { b, o in Int64(littleEndian: b.loadUnaligned(fromByteOffset: o, as: Int64.self)) }.map { "\($0)" }
    case "INT32":
        values = decode(4) { b, o in Int32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: Int32.self)) }.map { "\($0)" }
    case "BOOL":
        values = decode(1) { b, o in b[o] != 0 }.map { "\($0)" }
    case "BYTES":
        var found: [String] = []
        if let raw {
            var offset = raw.startIndex
            while offset + 4 <= raw.endIndex {
                let length = raw[offset..<offset + 4].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
                offset += 4
                guard offset + length <= raw.endIndex else { break }
                found.append(jsonString(String(decoding: raw[offset..<offset + length], as: UTF8.self)))
                offset += length
            }
        } else {
            found = output.contents.bytesContents.map { jsonString(String(decoding: $0, as: UTF8.self)) }
        }
        values = found
    default:
        values = raw.map { ["\"<\($0.count) raw bytes>\""] } ?? []
    }
    if raw == nil && output.datatype != "BYTES" {  // typed contents
        let c = output.contents
        let typed: [String] = c.fp32Contents.map { "\($0)" } + c.fp64Contents.map { "\($0)" }
            + c.int64Contents.map { "\($0)" } + c.intContents.map { "\($0)" } + c.uint64Contents.map { "\($0)" }
            + c.uintContents.map { "\($0)" } + c.boolContents.map { "\($0)" }
        return "[" + typed.joined(separator: ", ") + "]"
    }
    return "[" + values.joined(separator: ", ") + "]"
}

func target(_ options: Options) -> any ResolvableTarget {
    let isIPv4 = options.host.split(separator: ".").count == 4 && options.host.allSatisfy { $0.isNumber || $0 == "." }
    return isIPv4 ? .ipv4(address: options.host, port: options.port) : .dns(host: options.host, port: options.port)
}

func makeClient(_ options: Options) throws -> GRPCClient<HTTP2ClientTransport.Posix> {
    GRPCClient(transport: try .http2NIOPosix(target: target(options), transportSecurity: .plaintext))
}

let callOptions = {
    var callOptions = CallOptions.defaults
    callOptions.timeout = options.timeout.map { .milliseconds(Int64($0 * 1000)) }
    callOptions.waitForReady = true  // the first calls wait for the connection instead of failing fast
    return callOptions
}()
let request = makeRequest(options)

// --- --check: one request, its outputs as JSON ------------------------------------------------------

if options.check {
    do {
        let client = try makeClient(options)
        let response = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await client.runConnections() }
            defer { client.beginGracefulShutdown() }
            return try await Inference_GRPCInferenceService.Client(wrapping: client)
                .modelInfer(request, options: callOptions)
        }
        let outputs = response.outputs.enumerated().map { i, output in
            let raw = i < response.rawOutputContents.count ? response.rawOutputContents[i] : nil
            return "{\"name\": \(jsonString(output.name)), \"datatype\": \(jsonString(output.datatype)), "
                + "\"shape\": [\(output.shape.map(String.init).joined(separator: ", "))], "
                + "\"data\": \(outputData(output, raw: raw))}"
        }
        print("{\"model_name\": \(jsonString(response.modelName)), \"model_version\": \(jsonString(response.modelVersion)), "
              + "\"outputs\": [\(outputs.joined(separator: ", "))]}")
        exit(0)
    } catch {
        var stderr = StandardError()
        print("serval-grpc-load: check failed: \(describe(error))", to: &stderr)
        exit(1)
    }
}

// --- The load ---------------------------------------------------------------------------------------

struct CallerResult: Sendable {
    var histogram = LatencyHistogram()
    var errors = 0
    var cancelled = 0  // calls the watchdog cancelled: the server never answered them
    var warmupRequests = 0
    var warmupErrors = 0
    var firstError: (at: ContinuousClock.Instant, message: String)?

    mutating func merge(_ other: CallerResult) {
        histogram.merge(other.histogram)
        errors += other.errors
        cancelled += other.cancelled
        warmupRequests += other.warmupRequests
        warmupErrors += other.warmupErrors
        if let theirs = other.firstError, firstError.map({ theirs.at < $0.at }) ?? true { firstError = theirs }
    }
}

func runCaller(
    _ service: Inference_GRPCInferenceService.Client<HTTP2ClientTransport.Posix>,
    request: Inference_ModelInferRequest, callOptions: CallOptions,
    measureStart: ContinuousClock.Instant, measureEnd: ContinuousClock.Instant
) async -> CallerResult {
    let clock = ContinuousClock()
    var result = CallerResult()
    while true {
        let start = clock.now
        if start >= measureEnd { break }
        var failure: (any Error)?
        do {
            _ = try await service.modelInfer(request, options: callOptions)
        } catch {
            failure = error
        }
        let end = clock.now
        if failure != nil && Task.isCancelled {
            result.cancelled += 1
            result.firstError = result.firstError ?? (end, "no answer \(watchdogDelay) s after the measured window")
            break
        }
        if let failure, result.firstError == nil { result.firstError = (end, describe(failure)) }
        if end < measureStart {
            if failure == nil { result.warmupRequests += 1 } else { result.warmupErrors += 1 }
        } else if end < measureEnd {
            if failure == nil {
                result.histogram.record(nanoseconds: nanoseconds(end - start))
            } else {
                result.errors += 1
            }
        }
    }
    return result
}

let connectionCount = options.connectionCount
let watchdogDelay = options.timeout ?? 10
let total: CallerResult
do {
    let clients = try (0..<connectionCount).map { _ in try makeClient(options) }
    total = try await withThrowingTaskGroup(of: Void.self) { group in
        for client in clients {
            group.addTask { try await client.runConnections() }
        }
        let clock = ContinuousClock()
        let measureStart = clock.now + .milliseconds(Int64(options.warmup * 1000))
        let measureEnd = measureStart + .milliseconds(Int64(options.duration * 1000))
        let (request, callOptions) = (request, callOptions)
        let merged = await withTaskGroup(of: CallerResult?.self) { callers in
            for i in 0..<options.concurrency {
                let service = Inference_GRPCInferenceService.Client(wrapping: clients[i % connectionCount])
                callers.addTask {
                    await runCaller(
                        service, request: request, callOptions: callOptions, measureStart: measureStart,
                        measureEnd: measureEnd)
                }
            }
            callers.addTask {  // the watchdog: nil when it fires, an empty result when the callers finished first
                do {
                    try await Task.sleep(until: measureEnd + .seconds(watchdogDelay), clock: .continuous)
                    return nil
                } catch {
                    return CallerResult()
                }
            }
            var merged = CallerResult()
            var finished = 0
            for await result in callers {
                guard let result else {
                    callers.cancelAll()  // calls still pending: cancel them
                    continue
                }
                merged.merge(result)
                finished += 1
                if finished == options.concurrency { callers.cancelAll() }  // stops the watchdog
            }
            return merged
        }
        for client in clients { client.beginGracefulShutdown() }
        try await group.waitForAll()
        return merged
    }
} catch {
    fail("the clients failed: \(describe(error))")
}

if let first = total.firstError {
    var stderr = StandardError()
    print("serval-grpc-load: \(total.errors + total.warmupErrors + total.cancelled) errors; the first: \(first.message)",
          to: &stderr)
}
let histogram = total.histogram
let ms = { (ns: UInt64?) in ns.map { Double($0) / 1e6 } }
let requests = Int(histogram.total)
print("{\"requests\": \(requests), \"seconds\": \(jsonNumber(options.duration)), "
      + "\"rps\": \(jsonNumber(Double(requests) / options.duration, decimals: 2)), \"errors\": \(total.errors + total.cancelled), "
      + "\"p50_ms\": \(jsonNumber(ms(histogram.value(atPercentile: 50)))), "
      + "\"p90_ms\": \(jsonNumber(ms(histogram.value(atPercentile: 90)))), "
      + "\"p99_ms\": \(jsonNumber(ms(histogram.value(atPercentile: 99)))), "
      + "\"max_ms\": \(jsonNumber(ms(requests > 0 ? histogram.maxValue : nil))), "
      + "\"concurrency\": \(options.concurrency), \"connections\": \(connectionCount), "
      + "\"warmup_requests\": \(total.warmupRequests), \"warmup_errors\": \(total.warmupErrors), "
      + "\"cancelled\": \(total.cancelled), "
      + "\"first_error\": \(total.firstError.map { jsonString($0.message) } ?? "null")}")
