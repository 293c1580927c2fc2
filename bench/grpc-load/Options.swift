// Command-line options of serval-grpc-load (no ArgumentParser: the bench tool keeps its dependencies to gRPC).

import Glibc  // Linux only, like the rest of bench/

let usage = """
    usage: serval-grpc-load --target HOST:PORT --model NAME [options]

    Loads an Open Inference Protocol v2 gRPC server (inference.GRPCInferenceService/ModelInfer) with C
    concurrent callers, each sending unary requests back to back, and prints one JSON line:
    {"requests", "seconds", "rps", "errors", "p50_ms", "p90_ms", "p99_ms", "max_ms", ...}.

      --target HOST:PORT     the server (IPv4 address and port), required
      --model NAME           model_name, required
      --model-version V      model_version (default: none)
      --input-name NAME      the input tensor's name (default input-0)
      --datatype FP32|FP64   the input's datatype (default FP32)
      --features N           columns per row (default 20)
      --rows R               rows per request: shape [R, N] (default 1)
      --output NAME          ask for this output only (repeatable; default: every output)
      --concurrency C        concurrent callers (default 1)
      --connections K        HTTP/2 connections, callers assigned round-robin (default ceil(C / 16))
      --duration S           seconds measured (default 10)
      --warmup S             seconds of load before the measurement, discarded (default 2)
      --timeout S            deadline of each RPC (default: none, like tritonclient.grpc; a deadline
                             costs the client and the server a timer task per call). Without one,
                             calls still pending 10 s after the measured window are cancelled and
                             counted as errors
      --seed N               seed of the random input values (default 42)
      --check                send one request, print its outputs as JSON and exit (1 on error)
    """

struct Options: Sendable {
    var host = ""
    var port = 0
    var model = ""
    var modelVersion = ""
    var inputName = "input-0"
    var datatype = "FP32"
    var features = 20
    var rows = 1
    var outputs: [String] = []
    var concurrency = 1
    var connections: Int?
    var duration = 10.0
    var warmup = 2.0
    var timeout: Double?
    var seed: UInt64 = 42
    var check = false

    var connectionCount: Int {
        max(1, min(concurrency, connections ?? (concurrency + 15) / 16))
    }
}

func fail(_ message: String) -> Never {
    var stderr = StandardError()
    print("serval-grpc-load: \(message)", to: &stderr)
    exit(2)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var bytes = Array(string.utf8)
        bytes.withUnsafeMutableBytes { buffer in _ = Glibc.write(2, buffer.baseAddress, buffer.count) }
    }
}

func parseOptions(_ arguments: [String]) -> Options {
    var options = Options()
    var i = 0
    func value(_ flag: String) -> String {
        i += 1
        guard i < arguments.count else { fail("\(flag) needs a value") }
        return arguments[i]
    }
    func number<T: LosslessStringConvertible>(_ flag: String, _: T.Type) -> T {
        let text = value(flag)
        guard let parsed = T(text) else { fail("\(flag): not a number: \(text)") }
        return parsed
    }
    while i < arguments.count {
        let flag = arguments[i]
        switch flag {
        case "--target":
            let target = value(flag)
            guard let colon = target.lastIndex(of: ":"), let port = Int(target[target.index(after: colon)...]),
                  (1...65535).contains(port)
            else { fail("--target must be HOST:PORT, got \(target)") }
            options.host = String(target[..<colon])
            options.port = port
        case "--model": options.model = value(flag)
        case "--model-version": options.modelVersion = value(flag)
        case "--input-name": options.inputName = value(flag)
        case "--datatype":
            options.datatype = value(flag).uppercased()
            guard ["FP32", "FP64"].contains(options.datatype) else { fail("--datatype must be FP32 or FP64") }
        case "--features": options.features = number(flag, Int.self)
        case "--rows": options.rows = number(flag, Int.self)
        case "--output": options.outputs.append(value(flag))
        case "--concurrency": options.concurrency = number(flag, Int.self)
        case "--connections": options.connections = number(flag, Int.self)
        case "--duration": options.duration = number(flag, Double.self)
        case "--warmup": options.warmup = number(flag, Double.self)
        case "--timeout": options.timeout = number(flag, Double.self)
        case "--seed": options.seed = number(flag, UInt64.self)
        case "--check": options.check = true
        case "-h", "--help":
            print(usage)
            exit(0)
        default: fail("unknown option \(flag)\n\(usage)")
        }
        i += 1
    }
    if options.host.isEmpty { fail("--target HOST:PORT is required") }
    if options.model.isEmpty { fail("--model NAME is required") }
    if options.features < 1 || options.rows < 1 { fail("--features and --rows must be at least 1") }
    if options.concurrency < 1 { fail("--concurrency must be at least 1") }
    if let k = options.connections, k < 1 { fail("--connections must be at least 1") }
    if !(options.duration > 0) || options.warmup < 0 || !(options.timeout.map { $0 > 0 } ?? true) {
        fail("--duration and --timeout must be positive, --warmup not negative")
    }
    return options
}
