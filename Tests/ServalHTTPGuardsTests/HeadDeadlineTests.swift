import ServalHTTPGuards
import Testing

@Suite struct HeadDeadlineTests {
    @Test func aNewConnectionHasItsDeadlineRunning() {
        var deadline = HeadDeadline()
        #expect(deadline.state == .awaitingHead(running: true))
        #expect(deadline.bytesReceived() == .none)
        #expect(deadline.deadlinePassed() == .close)
    }

    @Test func aWholeHeadStopsTheDeadline() {
        var deadline = HeadDeadline()
        #expect(deadline.bytesReceived() == .none)
        #expect(deadline.headReceived() == .cancel)
        // A slow body or a slow model is not the head deadline's business.
        #expect(deadline.bytesReceived() == .none)
        #expect(deadline.deadlinePassed() == .none)
    }

    @Test func anIdleKeepAliveConnectionWaitsWithoutADeadlineUntilItsNextByte() {
        var deadline = HeadDeadline()
        _ = deadline.headReceived()
        #expect(deadline.responseEnded() == .none)
        #expect(deadline.state == .awaitingHead(running: false))
        #expect(deadline.deadlinePassed() == .none)
        #expect(deadline.bytesReceived() == .start)
        #expect(deadline.bytesReceived() == .none)
        #expect(deadline.deadlinePassed() == .close)
    }

    @Test func aPipelinedHeadStartsItsDeadlineWhenTheAnswerBeforeItEnds() {
        var deadline = HeadDeadline()
        _ = deadline.headReceived()
        #expect(deadline.bytesReceived() == .none)  // The next request's bytes, while this one is answered.
        #expect(deadline.responseEnded() == .start)
        #expect(deadline.headReceived() == .cancel)
    }

    @Test func everySequenceOfEventsClosesOnlyAConnectionWaitingForAHeadWithItsDeadlineSet() {
        // All sequences of up to six events from a new connection.
        enum Event: CaseIterable { case bytes, head, end, passed }
        func explore(_ deadline: HeadDeadline, depth: Int) {
            guard depth > 0 else { return }
            for event in Event.allCases {
                var next = deadline
                let before = next.state
                let action: HeadDeadline.Action
                switch event {
                case .bytes: action = next.bytesReceived()
                case .head: action = next.headReceived()
                case .end: action = next.responseEnded()
                case .passed: action = next.deadlinePassed()
                }
                if action == .close { #expect(before == .awaitingHead(running: true)) }
                if action == .start { #expect(next.state == .awaitingHead(running: true)) }
                if case .inRequest = next.state { #expect(action != .start) }
                explore(next, depth: depth - 1)
            }
        }
        explore(HeadDeadline(), depth: 6)
    }
}
