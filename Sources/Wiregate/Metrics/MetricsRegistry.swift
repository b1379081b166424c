import CoreMetrics
import Prometheus

/// One gateway's metrics: a Prometheus collector registry of its own (not the process-wide
/// `MetricsSystem`, so that two gateways in one test process do not share counters), the
/// factory the parts make their swift-metrics handles with, and the text exposition `/metrics`
/// serves.
public final class MetricsRegistry: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let process: ProcessMetrics

    /// The factory every `Counter`, `Gauge`, `Meter` and `Timer` of this gateway is made with.
    public let factory: any MetricsFactory

    /// An empty registry, with the process metrics and `wiregate_build_info`.
    /// - Parameter version: the version `wiregate_build_info` carries.
    public init(version: String) {
        let factory = HelpingFactory(registry: registry)
        self.factory = factory
        process = ProcessMetrics(factory: factory)
        Gauge(label: "wiregate_build_info", dimensions: [("version", version)], factory: factory).record(1)
    }

    /// The text exposition (format 0.0.4), with the process metrics read now.
    public func exposition() -> [UInt8] {
        process.update()
        return registry.emitToBuffer()
    }

    /// A factory handing out no-op handles: the parts of a gateway without `metrics:` count nothing.
    public static let none: any MetricsFactory = NOOPMetricsHandler.instance
}

/// swift-prometheus' factory, but with each metric's `# HELP` text from `MetricsCatalog`
/// (swift-metrics' API carries none), and the commit durations in buckets for an SD card.
private struct HelpingFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    private let fallback: PrometheusMetricsFactory

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        fallback = PrometheusMetricsFactory(registry: registry)
    }

    /// From 1 ms (a commit in the page cache) to 10 s (a card stalling on its erase blocks).
    static let commitBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
        .milliseconds(2500), .seconds(5), .seconds(10)
    ]

    private func descriptor(_ label: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: label, unitName: "", helpText: MetricsCatalog.help[label] ?? "")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        aggregate
            ? fallback.makeRecorder(label: label, dimensions: dimensions, aggregate: true)
            : registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: descriptor(label), labels: dimensions, buckets: Self.commitBuckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { fallback.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        fallback.destroyFloatingPointCounter(handler)
    }
    func destroyRecorder(_ handler: any RecorderHandler) { fallback.destroyRecorder(handler) }
    func destroyMeter(_ handler: any MeterHandler) { fallback.destroyMeter(handler) }
    func destroyTimer(_ handler: any TimerHandler) { fallback.destroyTimer(handler) }
}
