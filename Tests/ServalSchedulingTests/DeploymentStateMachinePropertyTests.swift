import ServalCore
import ServalScheduling
import ServalFuzzSupport
import Testing

@Suite("DeploymentStateMachine: random events")
struct DeploymentStateMachinePropertyTests {
    /// What a driver did with the actions so far.
    struct Ledger {
        var started: Set<UInt64> = []
        var ended: Set<UInt64> = []
        var committed: Set<UInt64> = []
        var routed: Set<UInt64> = []
        var retiredBy: [UInt64] = []
        var failed = false

        mutating func apply(_ actions: [Machine.Action], after event: String) {
            for action in actions {
                switch action {
                case .start(let ids):
                    #expect(!failed, "\(event): starts after the endpoint failed")
                    for id in ids { #expect(started.insert(id).inserted, "\(event): variant \(id) started twice") }
                case .stop(let ids), .retire(let ids, _):
                    for id in ids {
                        #expect(started.contains(id), "\(event): variant \(id) stopped but never started")
                        #expect(ended.insert(id).inserted, "\(event): variant \(id) stopped twice")
                    }
                    if case .retire(_, let update) = action { retiredBy.append(update) }
                case .commit(let id):
                    #expect(!failed, "\(event): a commit after the endpoint failed")
                    #expect(committed.insert(id).inserted, "\(event): update \(id) committed twice")
                case .route(let id):
                    #expect(committed.contains(id), "\(event): update \(id) routed before its commit")
                    #expect(routed.insert(id).inserted, "\(event): update \(id) routed twice")
                case .record(.failed, _):
                    #expect(!failed, "\(event): failed twice")
                    failed = true
                case .release, .withdraw, .record, .rollBack:
                    break
                }
            }
        }
    }

    @Test("variants start once and stop once, commits precede routes, nothing starts after a failure", arguments: 0..<16)
    func invariants(seed: UInt64) {
        var random = SeededGenerator(seed: seed)
        var machine = Machine()
        var ledger = Ledger()
        var nextID: UInt64 = 1
        func fresh(_ count: Int) -> [Machine.Member] {
            (0..<count).map { _ in
                defer { nextID += 1 }
                return Machine.Member(id: nextID, name: "v\(nextID)")
            }
        }
        ledger.apply(machine.handle(.launched(fresh(Int.random(in: 1...3, using: &random)))), after: "launched")
        for step in 0..<200 {
            let known = Array(ledger.started) + [9_999]
            let event: Machine.Event
            switch Int.random(in: 0..<10, using: &random) {
            case 0, 1:
                // Keep some serving variants, add fresh ones (maybe none: weights only).
                let kept = machine.fleet.filter { _ in Bool.random(using: &random) }
                let added = fresh(kept.isEmpty ? 1 : Int.random(in: 0...2, using: &random))
                event = .updateRequested(nextID + 1_000, fleet: kept + added)
                nextID += 1
            case 2:
                event = .variantFailed(known.randomElement(using: &random)!, reason: "r\(step)")
            case 3:
                event = .updateAbandoned(reason: "a\(step)")
            case 4, 5:
                let pending = ledger.committed.subtracting(ledger.routed)
                event = .switchCompleted(pending.randomElement(using: &random) ?? UInt64.random(in: 1...3, using: &random))
            case 6:
                event = .retiredDrained(ledger.retiredBy.randomElement(using: &random) ?? 0)
            default:
                event = .variantReady(known.randomElement(using: &random)!)
            }
            ledger.apply(machine.handle(event), after: "step \(step) \(event)")
            // What the machine would stop is exactly what runs and has not been stopped.
            for id in machine.variants {
                #expect(ledger.started.contains(id) && !ledger.ended.contains(id), "step \(step): variant \(id)")
            }
            if machine.phase == .failed { #expect(ledger.failed && machine.variants.isEmpty) }
        }
    }
}
