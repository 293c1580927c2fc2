public import ServalCore

/// One endpoint's deployments as a pure state machine: which variants serve, what an update starts, when traffic
/// switches, what a failure stops and what status the endpoint records.
///
/// It never touches a variant, the store or a clock: the caller feeds it events (the endpoint was launched, a
/// variant became ready or failed, a switch was committed) and carries out the actions it returns, in order. Every
/// variant and every update has an id the caller gives it, unique for the life of the process, so that an event
/// about a variant or an update the machine no longer tracks (a late callback of a rolled-back update, of a retired
/// variant, of an endpoint deleted and made again) changes nothing.
///
/// Policy (SageMaker's blue/green update, all at once):
/// - An endpoint is *starting* until every variant is ready, then *in service*.
/// - An update names the fleet that will serve: variants it keeps (by id) and fresh ones, which start beside the
///   serving fleet while it keeps serving. Once every variant of the new fleet is ready, the update is committed
///   (recorded), traffic switches to the new fleet in one step, and the variants it replaced are retired: they drain,
///   then what they used is released. An update that starts no variant (weights only) commits at once.
/// - A fresh variant that fails rolls the update back: the fresh variants stop and the endpoint stays in service on
///   its fleet, with the reason recorded.
/// - A variant of the serving fleet that fails fails the endpoint: it stops serving, every variant stops, and an
///   update in progress is abandoned.
///
/// Later policies (canary, linear steps, bake times) are more phases between ``Phase/updating(_:)`` and
/// ``Phase/switching(_:)``: a partial ``Action/route(_:)`` per step.
public struct DeploymentStateMachine: Sendable {
    /// Names a variant, for the life of the process.
    public typealias VariantID = UInt64
    /// Names an update, for the life of the process.
    public typealias UpdateID = UInt64

    /// A variant of a fleet.
    public struct Member: Sendable, Hashable {
        /// The variant's id.
        public var id: VariantID
        /// The variant's name, for failure reasons.
        public var name: String

        /// Creates a member.
        public init(id: VariantID, name: String) {
            self.id = id
            self.name = name
        }
    }

    /// An update in progress.
    public struct Update: Sendable, Equatable {
        /// The update's id.
        public var id: UpdateID
        /// The fleet that serves once it has switched, in the endpoint's variant order.
        public var fleet: [Member]
        /// The variants of `fleet` the update started (the others were serving already).
        public var fresh: Set<VariantID>
    }

    /// Where the endpoint is.
    public enum Phase: Sendable, Equatable {
        /// Nothing launched yet.
        case idle
        /// The fleet serves what it can while its variants load; the endpoint is not yet recorded in service.
        case starting
        /// Every variant of the fleet has been ready.
        case inService
        /// An update's fresh variants are loading beside the serving fleet.
        case updating(Update)
        /// Every variant of the update is ready; the caller is committing it.
        case switching(Update)
        /// The endpoint failed and serves nothing.
        case failed
    }

    /// What happened.
    public enum Event: Sendable {
        /// The endpoint was created: its fleet is made, not started.
        case launched([Member])
        /// Serval restarted: the endpoint's fleet is made again, and the update a crash interrupted, when there was
        /// one, starts again beside it.
        case restored([Member], interruptedUpdate: (id: UpdateID, fleet: [Member])?)
        /// The caller asks for `fleet` to serve: variants of the serving fleet it keeps, and fresh ones.
        case updateRequested(UpdateID, fleet: [Member])
        /// An update could not even be prepared (its config or models are gone); nothing was started.
        case updateAbandoned(reason: String)
        /// A variant has loaded its model on every instance.
        case variantReady(VariantID)
        /// A variant cannot serve.
        case variantFailed(VariantID, reason: String)
        /// The caller has committed the update that ``Action/commit(_:)`` named.
        case switchCompleted(UpdateID)
        /// The variants that ``Action/retire(_:after:)`` named have drained and stopped.
        case retiredDrained(UpdateID)
    }

    /// What the caller must do, in order.
    public enum Action: Sendable, Equatable {
        /// Run these variants.
        case start([VariantID])
        /// Record the endpoint on the update's config and variants, in service, then report
        /// ``Event/switchCompleted(_:)``.
        case commit(UpdateID)
        /// Route requests to the update's fleet from now on (at once, with the step that returned it).
        case route(UpdateID)
        /// Stop these variants once their queued and running requests have finished, then report
        /// ``Event/retiredDrained(_:)``.
        case retire([VariantID], after: UpdateID)
        /// Release what the update replaced and nothing uses any more (model packages).
        case release(UpdateID)
        /// Stop routing requests to the endpoint (at once, with the step that returned it).
        case withdraw
        /// Stop these variants now, failing what they hold.
        case stop([VariantID])
        /// Record the endpoint's status and reason.
        case record(EndpointStatus, reason: String?)
        /// Record that the update (`nil`: one that was never prepared) is rolled back: the endpoint keeps its
        /// config and variant settings, with `status` and the reason.
        case rollBack(UpdateID?, status: EndpointStatus, reason: String)
    }

    /// Where the endpoint is.
    public private(set) var phase: Phase = .idle
    /// The fleet that serves (or loads) now.
    public private(set) var fleet: [Member] = []
    /// Variants that have been ready.
    private var ready: Set<VariantID> = []
    /// A variant of the new fleet that failed while its update was being committed: it fails the endpoint once the
    /// switch completes.
    private var failedWhileSwitching: (id: VariantID, reason: String)?

    /// A machine for an endpoint not launched yet.
    public init() {}

    /// Whether an update may begin: the endpoint serves (or loads after a restart) and no update is in progress.
    public var canUpdate: Bool {
        phase == .starting || phase == .inService
    }

    /// The update in progress, if any.
    public var update: Update? {
        switch phase {
        case .updating(let update), .switching(let update): update
        default: nil
        }
    }

    /// Every variant that serves or that an update in progress started: what to stop when the endpoint goes.
    public var variants: [VariantID] {
        guard phase != .failed else { return [] }
        return fleet.map(\.id) + (update.map { update in update.fleet.map(\.id).filter(update.fresh.contains) } ?? [])
    }

    /// Applies `event` and returns what the caller must do.
    public mutating func handle(_ event: Event) -> [Action] {
        switch event {
        case .launched(let members):
            return restore(members, interruptedUpdate: nil)
        case .restored(let members, let interrupted):
            return restore(members, interruptedUpdate: interrupted)
        case .updateRequested(let id, let members):
            guard canUpdate else { return [] }
            let serving = Set(fleet.map(\.id))
            let update = Update(id: id, fleet: members, fresh: Set(members.map(\.id).filter { !serving.contains($0) }))
            if update.fresh.isEmpty {
                phase = .switching(update)
                return [.commit(id)]
            }
            phase = .updating(update)
            return [.start(members.map(\.id).filter(update.fresh.contains))]
        case .updateAbandoned(let reason):
            let serving = phase != .idle && phase != .failed
            return [.rollBack(nil, status: serving ? .inService : .updateRollbackFailed, reason: reason)]
        case .variantReady(let id):
            return variantReady(id)
        case .variantFailed(let id, let reason):
            return variantFailed(id, reason: reason)
        case .switchCompleted(let id):
            return switchCompleted(id)
        case .retiredDrained(let id):
            return [.release(id)]
        }
    }

    private mutating func restore(_ members: [Member], interruptedUpdate: (id: UpdateID, fleet: [Member])?) -> [Action] {
        guard phase == .idle else { return [] }
        fleet = members
        phase = .starting
        var started = members.map(\.id)
        if let interruptedUpdate {
            let serving = Set(started)
            let fresh = interruptedUpdate.fleet.map(\.id).filter { !serving.contains($0) }
            phase = .updating(Update(id: interruptedUpdate.id, fleet: interruptedUpdate.fleet, fresh: Set(fresh)))
            started += fresh
        }
        return [.start(started)]
    }

    private mutating func variantReady(_ id: VariantID) -> [Action] {
        guard fleet.contains(where: { $0.id == id }) || update?.fleet.contains(where: { $0.id == id }) == true else {
            return []
        }
        ready.insert(id)
        switch phase {
        case .starting where isReady(fleet):
            phase = .inService
            return [.record(.inService, reason: nil)]
        case .updating(let update) where isReady(update.fleet):
            phase = .switching(update)
            return [.commit(update.id)]
        default:
            return []
        }
    }

    private mutating func variantFailed(_ id: VariantID, reason: String) -> [Action] {
        switch phase {
        case .updating(let update) where update.fresh.contains(id):
            let fresh = update.fleet.map(\.id).filter(update.fresh.contains)
            ready.subtract(fresh)
            phase = isReady(fleet) ? .inService : .starting
            let prefix = update.fleet.count > 1 ? "Variant \(name(of: id, in: update.fleet)): " : ""
            return [
                .stop(fresh),
                .rollBack(update.id, status: .inService, reason: "The update failed and was rolled back. \(prefix)\(reason)"),
            ]
        case .switching(let update) where update.fleet.contains(where: { $0.id == id }):
            if failedWhileSwitching == nil { failedWhileSwitching = (id, reason) }
            return []
        case .starting, .inService, .updating:
            guard fleet.contains(where: { $0.id == id }) else { return [] }
            return fail(id, reason: reason)
        case .idle, .switching, .failed:
            return []
        }
    }

    private mutating func switchCompleted(_ id: UpdateID) -> [Action] {
        guard case .switching(let update) = phase, update.id == id else { return [] }
        let kept = Set(update.fleet.map(\.id))
        let retiring = fleet.map(\.id).filter { !kept.contains($0) }
        fleet = update.fleet
        ready.formIntersection(kept)
        phase = isReady(fleet) ? .inService : .starting  // a weights-only update while a restored fleet loads
        var actions: [Action] = [.route(id), retiring.isEmpty ? .release(id) : .retire(retiring, after: id)]
        if let failed = failedWhileSwitching {
            failedWhileSwitching = nil
            actions += fail(failed.id, reason: failed.reason)
        }
        return actions
    }

    /// The serving fleet's variant `id` failed: so does the endpoint.
    private mutating func fail(_ id: VariantID, reason: String) -> [Action] {
        let stopped = variants
        let prefix = fleet.count > 1 ? "Variant \(name(of: id, in: fleet)): " : ""
        phase = .failed
        ready = []
        return [.withdraw, .stop(stopped), .record(.failed, reason: prefix + reason)]
    }

    private func isReady(_ members: [Member]) -> Bool {
        members.allSatisfy { ready.contains($0.id) }
    }

    private func name(of id: VariantID, in members: [Member]) -> String {
        members.first { $0.id == id }?.name ?? "\(id)"
    }
}
