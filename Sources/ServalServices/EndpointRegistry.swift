public import ServalCore
import ServalRuntime
import ServalScheduling
import ServalStore
import Synchronization

/// The read path to running endpoints: what the inference entry, the metrics and the async dispatcher need, and no
/// more. ``EndpointManager`` is the one implementation.
public protocol EndpointRegistry: Sendable {
    /// The running endpoint named `name`, or the error that explains why it cannot serve (it does not exist, is
    /// loading, failed or is being deleted).
    func runtime(for name: String) async throws(ServalError) -> EndpointRuntime

    /// The endpoints running now (those that serve or load), in no particular order.
    func runningEndpoints() -> [EndpointRuntime]
}

/// What an update will do once committed: the runtime that serves after it, and what it records.
struct UpdatePlan: Sendable {
    /// The update's id in the endpoint's deployment state machine.
    var id: DeploymentStateMachine.UpdateID
    /// What will serve: new variants, and running ones the update keeps.
    var runtime: EndpointRuntime
    /// The endpoint's config and models after the update.
    var deployment: EndpointDeployment
    /// The endpoint's overrides after the update, and before it (restored by a rollback).
    var overrides: [VariantOverride]?
    var previousOverrides: [VariantOverride]?
    /// Only weights change: committing records the overrides alone.
    var weightsOnly = false
    /// The packages the endpoint used before the update, known once it is committed; released when its retired
    /// variants are gone and nothing else uses them.
    var replacedPackages: [String] = []
}

/// One endpoint's running state: its deployment state machine, the runtime requests are routed to, and the variants
/// and updates the machine's ids name.
struct DeployedEndpoint: Sendable {
    var machine = DeploymentStateMachine()
    /// What requests are routed to; `nil` once the endpoint failed.
    var serving: EndpointRuntime?
    /// Every variant the machine may name in an action, by id.
    var variants: [DeploymentStateMachine.VariantID: any VariantServing] = [:]
    /// Updates not yet rolled back or released, by id.
    var plans: [DeploymentStateMachine.UpdateID: UpdatePlan] = [:]

    /// The update in progress.
    var update: UpdatePlan? {
        machine.update.flatMap { plans[$0.id] }
    }

    /// Adds the variants of `runtime`, so that actions can name them.
    mutating func add(_ runtime: EndpointRuntime) {
        for (id, variant) in zip(runtime.ids, runtime.variants) { variants[id] = variant }
    }
}

/// The running endpoints by name, behind one lock (no actor hop on the request path), each stepped through its
/// deployment state machine.
final class EndpointTable: EndpointRegistry {
    private let store: any MetadataStore
    private let entries = Mutex<[String: DeployedEndpoint]>([:])

    init(store: any MetadataStore) {
        self.store = store
    }

    func runtime(for name: String) async throws(ServalError) -> EndpointRuntime {
        if let runtime = entries.withLock({ $0[name]?.serving }) { return runtime }
        let endpoint: Endpoint?
        do {
            endpoint = try await store.endpoint(named: name)
        } catch {
            throw ServalError(.internalFailure, "Reading endpoint \"\(name)\" failed.")
        }
        guard let endpoint else {
            throw ServalError(.notFound, "Endpoint \"\(name)\" does not exist; create it first or check the name.")
        }
        switch endpoint.status {
        case .failed:
            throw ServalError(.serviceUnavailable, "Endpoint \"\(name)\" is Failed: \(endpoint.failureReason ?? "no reason recorded").")
        case .deleting:
            throw ServalError(.notFound, "Endpoint \"\(name)\" is being deleted.")
        default:
            throw ServalError(.modelNotReady, "Endpoint \"\(name)\" is \(endpoint.status.rawValue); retry shortly.", retryAfterSeconds: 1)
        }
    }

    func runningEndpoints() -> [EndpointRuntime] {
        entries.withLock { $0.values.compactMap(\.serving) }
    }

    /// The named endpoint's state, copied.
    func entry(_ name: String) -> DeployedEndpoint? {
        entries.withLock { $0[name] }
    }

    /// Every endpoint's state, copied.
    func all() -> [DeployedEndpoint] {
        entries.withLock { Array($0.values) }
    }

    /// Starts tracking an endpoint that serves `runtime` (made, not started), replacing any earlier entry.
    func insert(_ name: String, serving runtime: EndpointRuntime) {
        var entry = DeployedEndpoint(serving: runtime)
        entry.add(runtime)
        entries.withLock { $0[name] = entry }
    }

    /// Changes the endpoint's entry, when it is tracked.
    func modify(_ name: String, _ body: (inout DeployedEndpoint) -> Void) {
        entries.withLock { entries in
            guard var entry = entries[name] else { return }
            body(&entry)
            entries[name] = entry
        }
    }

    /// Stops tracking the endpoint and returns what it was.
    func remove(_ name: String) -> DeployedEndpoint? {
        entries.withLock { $0.removeValue(forKey: name) }
    }

    /// Feeds `event` to the endpoint's machine, after `prepare` (which may add variants and plans), and applies the
    /// actions that must happen with the step (``DeploymentStateMachine/Action/route(_:)``,
    /// ``DeploymentStateMachine/Action/withdraw``). Returns the actions and the entry as it was for them, which still
    /// names the variants and plans they refer to; an endpoint no longer tracked steps a machine of its own.
    func step(
        _ name: String, _ event: DeploymentStateMachine.Event, prepare: (inout DeployedEndpoint) -> Void = { _ in }
    ) -> (actions: [DeploymentStateMachine.Action], entry: DeployedEndpoint) {
        entries.withLock { entries in
            let tracked = entries[name] != nil
            var entry = entries[name] ?? DeployedEndpoint()
            prepare(&entry)
            let actions = entry.machine.handle(event)
            for action in actions {
                switch action {
                case .route(let id): entry.serving = entry.plans[id]?.runtime ?? entry.serving
                case .withdraw: entry.serving = nil
                default: break
                }
            }
            let snapshot = entry
            // Forget what the actions end: stopped variants, rolled-back and released updates.
            for action in actions {
                switch action {
                case .stop(let ids), .retire(let ids, _): for id in ids { entry.variants[id] = nil }
                case .rollBack(let id?, _, _), .release(let id): entry.plans[id] = nil
                default: break
                }
            }
            if case .updateRequested(let id, _) = event, actions.isEmpty, let plan = entry.plans.removeValue(forKey: id) {
                // Refused (the endpoint is not in a state to update): its variants were never started.
                let serving = Set(entry.machine.variants)
                for id in plan.runtime.ids where !serving.contains(id) { entry.variants[id] = nil }
            }
            if tracked { entries[name] = entry }
            return (actions, snapshot)
        }
    }
}
