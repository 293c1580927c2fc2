import CoreMetrics
public import Prometheus
public import ServalCore
import Synchronization

/// Serval's metrics: the instruments every path records into, through swift-metrics with swift-prometheus as the
/// backend, and their Prometheus text exposition for `GET /metrics`.
///
/// Names follow Triton's well-known set under a `serval_` prefix. Labels are bounded: endpoint, variant, model,
/// path, failure reason, route template, method and status; never raw URLs or ids.
public final class ServalMetrics: InferenceObserver, Sendable {
    /// The registry the instruments live in.
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let variants = Mutex<[VariantLabels: VariantInstruments]>([:])
    private let http = Mutex<[HTTPKey: CoreMetrics.Counter]>([:])
    private let gauges = Mutex<[GaugeKey: CoreMetrics.Gauge]>([:])

    /// Seconds, for request, queue and compute durations: 0.5 ms to 60 s.
    static let durationBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
    ]
    /// Seconds, for model loads: 0.1 s to 10 min.
    static let loadBuckets: [Duration] = [
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
        .seconds(10), .seconds(30), .seconds(60), .seconds(120), .seconds(300), .seconds(600),
    ]
    /// Requests per batch.
    static let batchSizeBuckets: [Double] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]

    /// Creates an empty set of metrics with its own registry.
    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.durationBuckets
        factory.durationHistogramBuckets = ["serval_model_load_duration_seconds": Self.loadBuckets]
        factory.valueHistogramBuckets = ["serval_batch_size": Self.batchSizeBuckets]
        self.factory = factory
    }

    // MARK: Inference

    /// The instruments of one variant; the same ones for every runtime of that endpoint, variant and model, so
    /// counts go on across updates and restarts of the variant.
    public func variant(_ labels: VariantLabels) -> any VariantObserver {
        variants.withLock { known in
            if let instruments = known[labels] { return instruments }
            let instruments = VariantInstruments(labels: labels, factory: factory)
            known[labels] = instruments
            return instruments
        }
    }

    // MARK: HTTP

    /// Counts one HTTP request by its route template (`/endpoints/{name}/invocations`, never the raw path), method
    /// and response status.
    public func httpRequest(route: String, method: String, status: Int) {
        let key = HTTPKey(route: route, method: method, status: status)
        let counter = http.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = CoreMetrics.Counter(
                label: "serval_http_requests_total",
                dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory)
            counters[key] = counter
            return counter
        }
        counter.increment()
    }

    // MARK: Exposition

    /// A gauge's value as read at scrape time.
    public struct Reading: Sendable {
        /// The metric's name.
        public var name: String
        /// Its labels.
        public var labels: [(String, String)]
        /// The value.
        public var value: Double

        /// Creates a reading.
        public init(_ name: String, _ labels: [(String, String)], _ value: Double) {
            self.name = name
            self.labels = labels
            self.value = value
        }
    }

    /// Sets the gauges to `readings` (gauges not read this time, such as a deleted endpoint's, are removed), then
    /// writes every metric in Prometheus' text format.
    public func exposition(readings: [Reading]) -> [UInt8] {
        gauges.withLock { gauges in
            var seen = Set<GaugeKey>()
            for reading in readings {
                let key = GaugeKey(name: reading.name, labels: reading.labels.map { "\($0.0)=\($0.1)" })
                seen.insert(key)
                let gauge = gauges[key] ?? CoreMetrics.Gauge(label: reading.name, dimensions: reading.labels, factory: factory)
                gauges[key] = gauge
                gauge.record(reading.value)
            }
            for (key, gauge) in gauges where !seen.contains(key) {
                gauge.destroy()
                gauges[key] = nil
            }
        }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 * 1024)
        registry.emit(into: &buffer)
        return buffer
    }

    private struct HTTPKey: Hashable {
        var route: String
        var method: String
        var status: Int
    }

    private struct GaugeKey: Hashable {
        var name: String
        var labels: [String]
    }
}

/// One variant's instruments, made once (a path's on its first invocation, so that series appear only for the
/// paths a variant is used on); recording takes no look-up, and a short lock per histogram.
final class VariantInstruments: VariantObserver, Sendable {
    /// The instruments of one path.
    private struct PathInstruments: Sendable {
        let success: CoreMetrics.Counter
        /// By failure reason.
        let failure: [CoreMetrics.Counter]
        let duration: CoreMetrics.Timer
    }

    private let base: [(String, String)]
    private let factory: PrometheusMetricsFactory
    /// By path.
    private let paths = Mutex<[PathInstruments?]>(Array(repeating: nil, count: InferencePath.allCases.count))
    private let inferenceCount: CoreMetrics.Counter
    private let executionCount: CoreMetrics.Counter
    private let batchSize: CoreMetrics.Recorder
    private let queueDuration: CoreMetrics.Timer
    private let computeDuration: CoreMetrics.Timer
    private let loadDuration: CoreMetrics.Timer
    private let transformRecords: CoreMetrics.Counter
    private let captureDropped: CoreMetrics.Counter

    init(labels: VariantLabels, factory: PrometheusMetricsFactory) {
        let base = [("endpoint", labels.endpoint), ("variant", labels.variant), ("model", labels.model)]
        self.base = base
        self.factory = factory
        inferenceCount = CoreMetrics.Counter(label: "serval_inference_count_total", dimensions: base, factory: factory)
        executionCount = CoreMetrics.Counter(label: "serval_inference_exec_count_total", dimensions: base, factory: factory)
        batchSize = CoreMetrics.Recorder(label: "serval_batch_size", dimensions: base, aggregate: true, factory: factory)
        queueDuration = CoreMetrics.Timer(label: "serval_queue_duration_seconds", dimensions: base, factory: factory)
        computeDuration = CoreMetrics.Timer(label: "serval_compute_duration_seconds", dimensions: base, factory: factory)
        loadDuration = CoreMetrics.Timer(label: "serval_model_load_duration_seconds", dimensions: base, factory: factory)
        transformRecords = CoreMetrics.Counter(label: "serval_transform_records_total", dimensions: base, factory: factory)
        captureDropped = CoreMetrics.Counter(label: "serval_capture_dropped_total", dimensions: base, factory: factory)
    }

    func invocationEnded(path: InferencePath, duration: Duration, failure reason: InferenceFailure?) {
        let instruments = paths.withLock { paths in
            if let known = paths[path.index] { return known }
            let labels = base + [("path", path.rawValue)]
            let made = PathInstruments(
                success: CoreMetrics.Counter(label: "serval_inference_request_success_total", dimensions: labels, factory: factory),
                failure: InferenceFailure.allCases.map {
                    CoreMetrics.Counter(
                        label: "serval_inference_request_failure_total", dimensions: labels + [("reason", $0.rawValue)],
                        factory: factory)
                },
                duration: CoreMetrics.Timer(label: "serval_request_duration_seconds", dimensions: labels, factory: factory))
            paths[path.index] = made
            return made
        }
        if let reason {
            instruments.failure[reason.index].increment()
        } else {
            instruments.success.increment()
        }
        instruments.duration.recordNanoseconds(duration.nanoseconds)
    }

    func batchSent(items: Int, rows: Int) {
        executionCount.increment()
        inferenceCount.increment(by: rows)
        batchSize.record(items)
    }

    func queued(for duration: Duration) {
        queueDuration.recordNanoseconds(duration.nanoseconds)
    }

    func batchComputed(in duration: Duration) {
        computeDuration.recordNanoseconds(duration.nanoseconds)
    }

    func modelLoaded(in duration: Duration) {
        loadDuration.recordNanoseconds(duration.nanoseconds)
    }

    func recordsTransformed(_ count: Int) {
        transformRecords.increment(by: count)
    }

    func captureDropped(_ count: Int) {
        captureDropped.increment(by: count)
    }
}

extension InferencePath {
    /// The position in `allCases`, for arrays of instruments.
    var index: Int {
        switch self {
        case .sageMaker: 0
        case .oipREST: 1
        case .oipGRPC: 2
        case .async: 3
        case .transform: 4
        }
    }
}

extension InferenceFailure {
    /// The position in `allCases`, for arrays of instruments.
    var index: Int {
        switch self {
        case .validation: 0
        case .modelError: 1
        case .overloaded: 2
        case .timeout: 3
        case .unavailable: 4
        case .internal: 5
        }
    }
}

extension Duration {
    /// The duration in whole nanoseconds.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
