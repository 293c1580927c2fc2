import ServalCore
import ServalScheduling
import Testing

typealias Machine = DeploymentStateMachine

/// A fleet of variants named by id: `fleet(1, 2)` is variants 1 and 2, named `v1` and `v2`.
func fleet(_ ids: UInt64...) -> [Machine.Member] {
    ids.map { Machine.Member(id: $0, name: "v\($0)") }
}

extension DeploymentStateMachine {
    /// A machine whose fleet `members` has launched and become ready.
    static func inService(_ members: [Member]) -> Machine {
        var machine = Machine()
        _ = machine.handle(.launched(members))
        for member in members { _ = machine.handle(.variantReady(member.id)) }
        return machine
    }
}

@Suite("DeploymentStateMachine: creating")
struct DeploymentCreationTests {
    @Test("a launched fleet starts, and is recorded InService once, when its last variant is ready")
    func launch() {
        var machine = Machine()
        #expect(machine.phase == .idle && !machine.canUpdate)
        #expect(machine.handle(.launched(fleet(1, 2))) == [.start([1, 2])])
        #expect(machine.phase == .starting && machine.canUpdate)
        #expect(machine.handle(.variantReady(2)).isEmpty)
        #expect(machine.handle(.variantReady(1)) == [.record(.inService, reason: nil)])
        #expect(machine.phase == .inService)
        #expect(machine.handle(.variantReady(1)).isEmpty, "ready again records nothing")
        #expect(machine.variants == [1, 2])
        #expect(machine.handle(.launched(fleet(3))).isEmpty, "launched twice")
    }

    @Test("a variant failing while loading fails the endpoint: it stops serving and every variant stops")
    func failWhileLoading() {
        var machine = Machine()
        _ = machine.handle(.launched(fleet(1)))
        #expect(machine.handle(.variantFailed(1, reason: "boom")) == [.withdraw, .stop([1]), .record(.failed, reason: "boom")])
        #expect(machine.phase == .failed && machine.variants.isEmpty && !machine.canUpdate)
        #expect(machine.handle(.variantReady(1)).isEmpty)
        #expect(machine.handle(.variantFailed(1, reason: "again")).isEmpty)
    }

    @Test("with several variants, the reason names the one that failed; an InService endpoint fails the same way")
    func failureNamesTheVariant() {
        var machine = Machine.inService(fleet(1, 2))
        #expect(
            machine.handle(.variantFailed(2, reason: "crashed 5 times"))
                == [.withdraw, .stop([1, 2]), .record(.failed, reason: "Variant v2: crashed 5 times")])
    }

    @Test("events about variants it does not know change nothing")
    func unknownVariants() {
        var machine = Machine.inService(fleet(1))
        #expect(machine.handle(.variantReady(9)).isEmpty)
        #expect(machine.handle(.variantFailed(9, reason: "late")).isEmpty)
        #expect(machine.handle(.switchCompleted(9)).isEmpty)
        #expect(machine.phase == .inService)
        var idle = Machine()
        #expect(idle.handle(.variantReady(1)).isEmpty && idle.handle(.variantFailed(1, reason: "x")).isEmpty)
    }
}

@Suite("DeploymentStateMachine: updates")
struct DeploymentUpdateTests {
    @Test("a config update starts the new fleet beside the old, switches once all are ready, then retires the old")
    func configUpdate() {
        var machine = Machine.inService(fleet(1, 2))
        #expect(machine.handle(.updateRequested(10, fleet: fleet(3, 4))) == [.start([3, 4])])
        #expect(machine.update?.id == 10 && machine.update?.fresh == [3, 4] && !machine.canUpdate)
        #expect(machine.variants == [1, 2, 3, 4])
        #expect(machine.handle(.variantReady(3)).isEmpty)
        #expect(machine.handle(.variantReady(1)).isEmpty, "the old fleet's events do not move the update")
        #expect(machine.handle(.variantReady(4)) == [.commit(10)])
        guard case .switching = machine.phase else {
            Issue.record("expected switching, got \(machine.phase)")
            return
        }
        #expect(machine.fleet == fleet(1, 2), "the old fleet serves until the switch completes")
        #expect(machine.handle(.switchCompleted(11)).isEmpty, "another update's id")
        #expect(machine.handle(.switchCompleted(10)) == [.route(10), .retire([1, 2], after: 10)])
        #expect(machine.phase == .inService && machine.fleet == fleet(3, 4) && machine.update == nil)
        #expect(machine.variants == [3, 4])
        #expect(machine.handle(.retiredDrained(10)) == [.release(10)])
        #expect(machine.handle(.variantFailed(1, reason: "a retired variant's late failure")).isEmpty)
        #expect(machine.handle(.switchCompleted(10)).isEmpty, "a second report")
    }

    @Test("an instance-count update replaces one variant and keeps the others serving")
    func capacityUpdate() {
        var machine = Machine.inService(fleet(1, 2))
        let next = [Machine.Member(id: 1, name: "v1"), Machine.Member(id: 5, name: "v2")]
        #expect(machine.handle(.updateRequested(20, fleet: next)) == [.start([5])])
        #expect(machine.handle(.variantReady(5)) == [.commit(20)])
        #expect(machine.handle(.switchCompleted(20)) == [.route(20), .retire([2], after: 20)])
        #expect(machine.fleet == next)
        // The kept variant stays known and ready: it can fail the endpoint, and a later update can keep it.
        #expect(machine.handle(.updateRequested(21, fleet: next)) == [.commit(21)])
    }

    @Test("a weights-only update (no fresh variant) commits at once and has nothing to retire")
    func weightsOnly() {
        var machine = Machine.inService(fleet(1, 2))
        #expect(machine.handle(.updateRequested(30, fleet: fleet(1, 2))) == [.commit(30)])
        #expect(!machine.canUpdate)
        #expect(machine.handle(.switchCompleted(30)) == [.route(30), .release(30)])
        #expect(machine.phase == .inService && machine.canUpdate)
    }

    @Test("a fresh variant failing rolls back: fresh variants stop, the old fleet stays InService with the reason")
    func rollback() {
        var machine = Machine.inService(fleet(1))
        _ = machine.handle(.updateRequested(40, fleet: fleet(2, 3)))
        _ = machine.handle(.variantReady(2))
        #expect(
            machine.handle(.variantFailed(3, reason: "cannot load"))
                == [
                    .stop([2, 3]),
                    .rollBack(40, status: .inService, reason: "The update failed and was rolled back. Variant v3: cannot load"),
                ])
        #expect(machine.phase == .inService && machine.fleet == fleet(1) && machine.update == nil)
        #expect(machine.variants == [1])
        // The rolled-back update's late callbacks act on nothing, and a next update may begin.
        #expect(machine.handle(.variantFailed(2, reason: "stopped")).isEmpty)
        #expect(machine.handle(.variantReady(3)).isEmpty)
        #expect(machine.handle(.switchCompleted(40)).isEmpty)
        #expect(machine.handle(.updateRequested(41, fleet: fleet(4))) == [.start([4])])
        #expect(machine.handle(.variantReady(4)) == [.commit(41)])
    }

    @Test("a one-variant update's rollback reason has no variant name")
    func rollbackOfOneVariant() {
        var machine = Machine.inService(fleet(1, 2))
        _ = machine.handle(.updateRequested(50, fleet: fleet(3)))
        #expect(
            machine.handle(.variantFailed(3, reason: "ImportError"))
                == [.stop([3]), .rollBack(50, status: .inService, reason: "The update failed and was rolled back. ImportError")])
    }

    @Test("a serving variant failing during an update fails the endpoint and abandons the update")
    func servingFailureAbandonsTheUpdate() {
        var machine = Machine.inService(fleet(1, 2))
        let next = [Machine.Member(id: 1, name: "v1"), Machine.Member(id: 3, name: "v2")]
        _ = machine.handle(.updateRequested(60, fleet: next))
        // Variant 1 is kept by the update, but it serves now: its failure is the endpoint's.
        #expect(
            machine.handle(.variantFailed(1, reason: "OOM"))
                == [.withdraw, .stop([1, 2, 3]), .record(.failed, reason: "Variant v1: OOM")])
        #expect(machine.phase == .failed && machine.update == nil)
        #expect(machine.handle(.variantReady(3)).isEmpty)
        #expect(machine.handle(.updateRequested(61, fleet: fleet(4))).isEmpty)
    }

    @Test("an update is refused while another runs, before launch and after a failure")
    func refusedUpdates() {
        var machine = Machine.inService(fleet(1))
        _ = machine.handle(.updateRequested(70, fleet: fleet(2)))
        #expect(machine.handle(.updateRequested(71, fleet: fleet(3))).isEmpty)
        #expect(machine.update?.id == 70)
        _ = machine.handle(.variantReady(2))
        #expect(machine.handle(.updateRequested(72, fleet: fleet(3))).isEmpty, "refused while switching")
        var idle = Machine()
        #expect(idle.handle(.updateRequested(73, fleet: fleet(1))).isEmpty && idle.phase == .idle)
    }

    @Test("an update that could not be prepared is rolled back: InService while a fleet serves, UpdateRollbackFailed else")
    func abandoned() {
        var machine = Machine.inService(fleet(1))
        #expect(machine.handle(.updateAbandoned(reason: "gone")) == [.rollBack(nil, status: .inService, reason: "gone")])
        #expect(machine.phase == .inService)
        var idle = Machine()
        #expect(idle.handle(.updateAbandoned(reason: "x")) == [.rollBack(nil, status: .updateRollbackFailed, reason: "x")])
        var failed = Machine()
        _ = failed.handle(.launched(fleet(1)))
        _ = failed.handle(.variantFailed(1, reason: "dead"))
        #expect(failed.handle(.updateAbandoned(reason: "y")) == [.rollBack(nil, status: .updateRollbackFailed, reason: "y")])
    }
}

@Suite("DeploymentStateMachine: switching and restarts")
struct DeploymentSwitchAndRestoreTests {
    @Test("a new variant failing while its update is committed fails the endpoint once the switch completes")
    func newVariantFailsWhileSwitching() {
        var machine = Machine.inService(fleet(1))
        _ = machine.handle(.updateRequested(80, fleet: fleet(2, 3)))
        _ = machine.handle(.variantReady(2))
        #expect(machine.handle(.variantReady(3)) == [.commit(80)])
        #expect(machine.handle(.variantFailed(3, reason: "crash")).isEmpty)
        #expect(machine.handle(.variantFailed(2, reason: "second")).isEmpty, "the first failure is the reason")
        #expect(
            machine.handle(.switchCompleted(80))
                == [.route(80), .retire([1], after: 80), .withdraw, .stop([2, 3]), .record(.failed, reason: "Variant v3: crash")])
        #expect(machine.phase == .failed)
    }

    @Test("an old variant failing while the update is committed is being retired: nothing changes")
    func oldVariantFailsWhileSwitching() {
        var machine = Machine.inService(fleet(1))
        _ = machine.handle(.updateRequested(90, fleet: fleet(2)))
        _ = machine.handle(.variantReady(2))
        #expect(machine.handle(.variantFailed(1, reason: "old")).isEmpty)
        #expect(machine.handle(.switchCompleted(90)) == [.route(90), .retire([1], after: 90)])
        #expect(machine.phase == .inService)
    }

    @Test("a restored endpoint starts its fleet and the interrupted update together; the update switches when ready")
    func restoreWithUpdate() {
        var machine = Machine()
        #expect(machine.handle(.restored(fleet(1), interruptedUpdate: (100, fleet(2)))) == [.start([1, 2])])
        #expect(machine.update?.id == 100 && machine.update?.fresh == [2])
        #expect(machine.handle(.variantReady(1)).isEmpty, "the old fleet's readiness records nothing mid-update")
        #expect(machine.handle(.variantReady(2)) == [.commit(100)])
        #expect(machine.handle(.switchCompleted(100)) == [.route(100), .retire([1], after: 100)])
    }

    @Test("a restored update rolled back before the old fleet is ready: InService is recorded once the fleet is ready")
    func restoreRollbackBeforeReady() {
        var machine = Machine()
        _ = machine.handle(.restored(fleet(1), interruptedUpdate: (110, fleet(2))))
        #expect(
            machine.handle(.variantFailed(2, reason: "bad"))
                == [.stop([2]), .rollBack(110, status: .inService, reason: "The update failed and was rolled back. bad")])
        #expect(machine.phase == .starting)
        #expect(machine.handle(.variantReady(1)) == [.record(.inService, reason: nil)])
    }

    @Test("a restored endpoint without an update is launched")
    func restoreAlone() {
        var machine = Machine()
        #expect(machine.handle(.restored(fleet(1, 2), interruptedUpdate: nil)) == [.start([1, 2])])
        #expect(machine.phase == .starting && machine.update == nil)
    }

    @Test("a weights-only update on a restored endpoint still loading commits at once")
    func weightsWhileStarting() {
        var machine = Machine()
        _ = machine.handle(.restored(fleet(1), interruptedUpdate: nil))
        #expect(machine.handle(.updateRequested(120, fleet: fleet(1))) == [.commit(120)])
        #expect(machine.handle(.switchCompleted(120)) == [.route(120), .release(120)])
        // The fleet still loads: once it is ready, the endpoint is recorded InService.
        #expect(machine.phase == .starting)
        #expect(machine.handle(.variantReady(1)) == [.record(.inService, reason: nil)])
    }
}
