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
        #expect(deadline.requestEnded() == .none)
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
        #expect(deadline.requestEnded() == .none)
        #expect(deadline.bytesReceived() == .none)  // The next request's bytes, while this one is answered.
        #expect(deadline.responseEnded() == .start)
        #expect(deadline.headReceived() == .cancel)
    }

    @Test func aBodyArrivingAfterItsHeadIsNotANextRequest() {
        // A client sends its head, then its body; the server answers after a slow model; the client sends its next
        // request much later on the same connection. The body's bytes must not start a deadline.
        var deadline = HeadDeadline()
        #expect(deadline.bytesReceived() == .none)
        #expect(deadline.headReceived() == .cancel)
        #expect(deadline.bytesReceived() == .none)
        #expect(deadline.requestEnded() == .none)
        #expect(deadline.responseEnded() == .none)
        #expect(deadline.state == .awaitingHead(running: false))
        #expect(deadline.deadlinePassed() == .none)
    }

    @Test func anEarlyAnswerWaitsForTheRestOfItsBody() {
        var deadline = HeadDeadline()
        _ = deadline.headReceived()
        #expect(deadline.responseEnded() == .none)  // e.g. 413 before the body was read
        #expect(deadline.bytesReceived() == .none)
        #expect(deadline.requestEnded() == .none)
        #expect(deadline.state == .awaitingHead(running: false))
    }

    @Test func everySequenceOfEventsClosesOnlyAConnectionWaitingForAHeadWithItsDeadlineSet() {
        // All sequences of up to six events from a new connection.
        enum Event: CaseIterable { case bytes, head, requestEnd, end, passed }
        func explore(_ deadline: HeadDeadline, depth: Int) {
            guard depth > 0 else { return }
            for event in Event.allCases {
                var next = deadline
                let before = next.state
                let action: HeadDeadline.Action
                switch event {
                case .bytes: action = next.bytesReceived()
                case .head: action = next.headReceived()
                case .requestEnd: action = next.requestEnded()
                case .end: action = next.responseEnded()
                case .passed: action = next.deadlinePassed()
                }
                if action == .close { #expect(before == .awaitingHead(running: true)) }
                if action == .start { #expect(next.state == .awaitingHead(running: true)) }
                if case .inRequest = next.state { #expect(action != .start) }
                if case .inRequest(bodyComplete: false, _, _) = before, event == .bytes { #expect(next.state == before) }
                explore(next, depth: depth - 1)
            }
        }
        explore(HeadDeadline(), depth: 6)
    }
}
