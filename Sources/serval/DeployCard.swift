import ServalAPI

/// An endpoint's deploy card as `serval endpoints describe` prints it: what ML platforms show for a deployment.
struct DeployCard {
    let text: String

    init(_ endpoint: EndpointDescription) {
        var lines = ["Endpoint \(endpoint.name) — \(endpoint.status) (config \(endpoint.config), updated \(endpoint.updatedAt))"]
        if let reason = endpoint.failureReason { lines.append("  Failure: \(reason)") }
        if let urls = endpoint.urls {
            lines.append("  SageMaker runtime  POST \(urls.sageMaker)")
            lines.append("  OIP REST           POST \(urls.openInference)")
            lines.append("  OIP gRPC           \(urls.grpc) (model \(endpoint.name))")
        }
        if let queue = endpoint.asyncQueue {
            lines.append("  Async queue        \(queue.queued) queued, \(queue.inProgress) in progress")
        }
        if let capture = endpoint.dataCapture {
            lines.append(
                "  Data capture       \(capture.status): \(capture.samplingPercentage) % of \(capture.captureModes.joined(separator: " and ").lowercased()) to \(capture.destination); \(capture.recordsWritten) records written, \(capture.recordsDropped) dropped")
            if let error = capture.lastError {
                lines.append("  Last capture error \(capture.lastErrorAt ?? "–"): \(error)")
            }
        }
        if endpoint.variants.isEmpty { lines.append("  No variant is running.") }
        for variant in endpoint.variants {
            lines.append("  Variant \(variant.name) (model \(variant.model))")
            lines.append(
                "    instances        \(variant.readyInstances) ready, \(variant.loadingInstances) loading, \(variant.failedInstances) failed; \(variant.desiredInstances) desired")
            lines.append("    queue            \(variant.queueDepth) waiting, \(variant.inFlight) running")
            let p50 = variant.latencyP50Ms.map { Self.milliseconds($0) } ?? "–"
            let p99 = variant.latencyP99Ms.map { Self.milliseconds($0) } ?? "–"
            lines.append(
                "    last minute      \(Self.decimal(variant.requestsPerSecond)) req/s, p50 \(p50), p99 \(p99), \(variant.invocationsLastMinute) invocations, \(variant.errorsLastMinute) errors")
            lines.append(
                "    batching         \(variant.averageBatchSize.map { Self.decimal($0) + " requests a batch on average" } ?? "no batch yet")")
            lines.append("    worker memory    \(Self.megabytes(variant.workerMemoryBytes))")
        }
        text = lines.joined(separator: "\n") + "\n"
    }

    static func decimal(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        return tenths.truncatingRemainder(dividingBy: 10) == 0 ? String(Int(tenths / 10)) : String(tenths / 10)
    }

    static func milliseconds(_ value: Double) -> String {
        value < 10 ? decimal(value) + " ms" : String(Int(value.rounded())) + " ms"
    }

    static func megabytes(_ bytes: Int) -> String {
        "\(decimal(Double(bytes) / 1_048_576)) MiB"
    }
}
