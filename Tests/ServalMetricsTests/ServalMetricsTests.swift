import ServalCore
import Testing

@testable import ServalMetrics

@Suite("Serval's metrics and their Prometheus exposition")
struct ServalMetricsTests {
    static let labels = VariantLabels(endpoint: "churn", variant: "AllTraffic", model: "m1")

    /// The value of the sample `name{labels}` in `text`, with labels given in the order they are written.
    static func sample(_ text: String, _ name: String, _ labels: String) -> Double? {
        let prefix = labels.isEmpty ? name + " " : "\(name){\(labels)} "
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        return Double(line.dropFirst(prefix.count))
    }

    @Test("each invocation counts once by path and outcome; batches count items, rows and executions")
    func invocationsAndBatches() {
        let metrics = ServalMetrics()
        let variant = metrics.variant(Self.labels)
        for _ in 0..<3 { variant.invocationEnded(path: .sageMaker, duration: .milliseconds(2), failure: nil) }
        variant.invocationEnded(path: .oipGRPC, duration: .milliseconds(1), failure: .modelError)
        variant.invocationEnded(path: .async, duration: .seconds(3), failure: .timeout)
        variant.batchSent(items: 3, rows: 7)
        variant.batchSent(items: 1, rows: 1)
        variant.queued(for: .microseconds(300))
        variant.batchComputed(in: .milliseconds(4))
        variant.modelLoaded(in: .seconds(2))
        variant.recordsTransformed(12)

        let text = String(decoding: metrics.exposition(readings: []), as: UTF8.self)
        let base = #"endpoint="churn",variant="AllTraffic",model="m1""#
        #expect(Self.sample(text, "serval_inference_request_success_total", base + #",path="sagemaker""#) == 3)
        #expect(Self.sample(text, "serval_inference_request_failure_total", base + #",path="oip_grpc",reason="model_error""#) == 1)
        #expect(Self.sample(text, "serval_inference_request_failure_total", base + #",path="async",reason="timeout""#) == 1)
        #expect(Self.sample(text, "serval_inference_request_failure_total", base + #",path="async",reason="overloaded""#) == 0)
        // Paths never used have no series.
        #expect(!text.contains(#"path="oip_rest""#))
        #expect(Self.sample(text, "serval_inference_count_total", base) == 8)
        #expect(Self.sample(text, "serval_inference_exec_count_total", base) == 2)
        #expect(Self.sample(text, "serval_batch_size_count", base) == 2)
        #expect(Self.sample(text, "serval_batch_size_sum", base) == 4)
        #expect(Self.sample(text, "serval_batch_size_bucket", base + #",le="2.0""#) == 1)
        #expect(Self.sample(text, "serval_request_duration_seconds_count", base + #",path="sagemaker""#) == 3)
        #expect(Self.sample(text, "serval_request_duration_seconds_sum", base + #",path="sagemaker""#)! > 0.0059)
        #expect(Self.sample(text, "serval_queue_duration_seconds_bucket", base + #",le="0.0005""#) == 1)
        #expect(Self.sample(text, "serval_compute_duration_seconds_count", base) == 1)
        #expect(Self.sample(text, "serval_model_load_duration_seconds_bucket", base + #",le="2.5""#) == 1)
        #expect(Self.sample(text, "serval_model_load_duration_seconds_bucket", base + #",le="1.0""#) == 0)
        #expect(Self.sample(text, "serval_transform_records_total", base) == 12)
        #expect(text.contains("# TYPE serval_request_duration_seconds histogram"))
    }

    @Test("a variant made again with the same labels goes on counting where the last one stopped")
    func sameLabelsSameSeries() {
        let metrics = ServalMetrics()
        metrics.variant(Self.labels).invocationEnded(path: .transform, duration: .zero, failure: nil)
        metrics.variant(Self.labels).invocationEnded(path: .transform, duration: .zero, failure: nil)
        let text = String(decoding: metrics.exposition(readings: []), as: UTF8.self)
        #expect(
            Self.sample(
                text, "serval_inference_request_success_total",
                #"endpoint="churn",variant="AllTraffic",model="m1",path="transform""#) == 2)
    }

    @Test("gauges hold what the last scrape read; a series not read again disappears")
    func gauges() {
        let metrics = ServalMetrics()
        let first = String(
            decoding: metrics.exposition(readings: [
                .init("serval_pending_requests", [("endpoint", "a")], 4),
                .init("serval_pending_requests", [("endpoint", "b")], 1),
            ]), as: UTF8.self)
        #expect(Self.sample(first, "serval_pending_requests", #"endpoint="a""#) == 4)
        #expect(Self.sample(first, "serval_pending_requests", #"endpoint="b""#) == 1)
        let second = String(
            decoding: metrics.exposition(readings: [.init("serval_pending_requests", [("endpoint", "a")], 2)]), as: UTF8.self)
        #expect(Self.sample(second, "serval_pending_requests", #"endpoint="a""#) == 2)
        #expect(Self.sample(second, "serval_pending_requests", #"endpoint="b""#) == nil)
    }

    @Test("HTTP requests count by route template, method and status")
    func httpRequests() {
        let metrics = ServalMetrics()
        metrics.httpRequest(route: "/endpoints/{name}/invocations", method: "POST", status: 200)
        metrics.httpRequest(route: "/endpoints/{name}/invocations", method: "POST", status: 200)
        metrics.httpRequest(route: "unmatched", method: "GET", status: 404)
        let text = String(decoding: metrics.exposition(readings: []), as: UTF8.self)
        #expect(
            Self.sample(text, "serval_http_requests_total", #"route="/endpoints/{name}/invocations",method="POST",status="200""#) == 2)
        #expect(Self.sample(text, "serval_http_requests_total", #"route="unmatched",method="GET",status="404""#) == 1)
    }

    @Test("every failure code counts under one of the six reasons")
    func failureReasons() {
        #expect(InferenceFailure(.payloadTooLarge) == .validation)
        #expect(InferenceFailure(.modelNotReady) == .unavailable)
        #expect(InferenceFailure(.invocationTimeout) == .timeout)
        #expect(Set(ServalError.Code.allCases.map(InferenceFailure.init)) == Set(InferenceFailure.allCases))
    }
}
