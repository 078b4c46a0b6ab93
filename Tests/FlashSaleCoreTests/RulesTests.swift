import Testing
@testable import FlashSaleCore

/// A sale opened at T with a 5 minute hold, one per user.
func makeSale(state: OperatorState = .open, available: Int64 = 10, perUser: Int64 = 1, waitlist: Bool = false,
              startsAt: Instant = T, endsAt: Instant? = nil) -> Sale {
    Sale(id: SaleID(trusted: "s1"), name: "s1", operatorState: state,
         counters: Counters(total: 10, available: available, held: 10 - available, booked: 0, cancelled: 0, expired: 0),
         hold: .seconds(300), perUser: perUser, waitlist: waitlist, startsAt: startsAt, endsAt: endsAt, createdAt: T, highWater: T)
}

func makeHold(status: BookingStatus = .held, createdAt: Instant = T) -> Booking {
    Booking(id: BookingIDGenerator().make(at: T), sale: SaleID(trusted: "s1"), user: "u1", status: status,
            createdAt: createdAt, expiresAt: createdAt.adding(.seconds(300)), confirmedAt: nil,
            cancelledAt: nil, expiredAt: nil, ip: nil, userAgent: nil, key: nil)
}

let T = Instant(milliseconds: 1_795_532_400_000)

@Suite struct ExpiryBoundaryTests {
    @Test func holdIsConfirmableOneMillisecondBeforeExpiry() {
        let hold = makeHold()
        #expect(Rules.confirmation(of: hold, at: hold.expiresAt.adding(Span(milliseconds: -1))) == .move(to: .booked))
    }

    @Test func confirmAtExpiryInstantIsRefusedAndExpiresTheHold() {
        let hold = makeHold()
        guard case .moveThenRefuse(.expired, let error) = Rules.confirmation(of: hold, at: hold.expiresAt) else {
            Issue.record("confirm at the expiry instant did not expire the hold and refuse")
            return
        }
        #expect(error.code == .holdExpired)
    }

    @Test func confirmOfAnExpiredHoldIsRefused() {
        guard case .refuse(let error) = Rules.confirmation(of: makeHold(status: .expired), at: T) else {
            Issue.record("confirm of an expired hold was not refused")
            return
        }
        #expect(error.code == .holdExpired)
    }

    @Test func holdIsSeenExpiredFromTheExpiryInstant() {
        let hold = makeHold()
        #expect(hold.seen(at: Instant(milliseconds: hold.expiresAt.milliseconds - 1)).status == .held)
        let seen = hold.seen(at: hold.expiresAt)
        #expect(seen.status == .expired)
        #expect(seen.expiredAt == hold.expiresAt)
    }

    @Test func cancelOfAnOverdueHoldExpiresIt() {
        let hold = makeHold()
        #expect(Rules.cancellation(of: hold, force: false, at: hold.expiresAt) == .move(to: .expired))
        #expect(Rules.cancellation(of: hold, force: false, at: T) == .move(to: .cancelled))
    }

    @Test func confirmedBookingNeedsForceToCancel() {
        let booked = makeHold(status: .booked)
        #expect(Rules.cancellation(of: booked, force: true, at: T) == .move(to: .cancelled))
        guard case .refuse(let error) = Rules.cancellation(of: booked, force: false, at: T) else {
            Issue.record("cancel of a booked item without --force was allowed")
            return
        }
        #expect(error.code == .conflict)
    }

    @Test func finalStatesStayAsTheyAre() {
        #expect(Rules.cancellation(of: makeHold(status: .cancelled), force: true, at: T) == .unchanged)
        #expect(Rules.cancellation(of: makeHold(status: .expired), force: false, at: T) == .unchanged)
        #expect(Rules.confirmation(of: makeHold(status: .booked), at: T.adding(.seconds(3600))) == .unchanged)
        guard case .refuse(let error) = Rules.confirmation(of: makeHold(status: .cancelled), at: T) else {
            Issue.record("a cancelled booking was confirmed")
            return
        }
        #expect(error.code == .conflict)
    }
}

/// Records which facts `Rules.admit` asked for, to prove the order of the checks.
final class FactLog {
    var asked: [String] = []
}

@Suite struct CheckOrderTests {
    func admit(_ sale: Sale, at now: Instant = T, fromQueue: Bool = false, blocked: BlockedBecause? = nil, active: Int64,
               overdue: Bool, lineWaiting: Bool = false, log: FactLog) -> Admission {
        Rules.admit(sale, at: now, fromQueue: fromQueue,
                    blockedBecause: { log.asked.append("blocked"); return blocked },
                    activeBookings: { log.asked.append("active"); return active },
                    hasOverdueHold: { log.asked.append("overdue"); return overdue },
                    isLineWaiting: { log.asked.append("line"); return lineWaiting })
    }

    @Test func notOpenIsDecidedBeforeAnythingIsCounted() {
        let log = FactLog()
        let admission = admit(makeSale(state: .paused, available: 0), active: 5, overdue: false, log: log)
        #expect(admission.declineReason == .notOpen)
        #expect(log.asked.isEmpty)
    }

    @Test func userLimitComesBeforeSoldOut() {
        let log = FactLog()
        #expect(admit(makeSale(available: 0), active: 1, overdue: false, log: log).declineReason == .userLimit)
        #expect(log.asked == ["blocked", "active"])
    }

    @Test func blockedComesAfterNotOpenAndBeforeTheUserLimit() {
        let log = FactLog()
        #expect(admit(makeSale(available: 0), blocked: .perIPLimit(requester: "1.2.3.4", kind: .ip, active: 3, attempts: 4), active: 1, overdue: false, log: log).declineReason == .blocked)
        #expect(log.asked == ["blocked"])
        let closed = FactLog()
        #expect(admit(makeSale(state: .closed), blocked: .perIPLimit(requester: "1.2.3.4", kind: .ip, active: 3, attempts: 4), active: 0, overdue: false, log: closed).declineReason == .notOpen)
        #expect(closed.asked.isEmpty)
    }

    @Test func aPerIPLimitIsReachedAtItsValue() {
        let sale = Sale(id: SaleID(trusted: "s1"), name: "s1", operatorState: .open,
                        counters: Counters(total: 1, available: 1, held: 0, booked: 0, cancelled: 0, expired: 0),
                        hold: .seconds(300), perUser: 1, perIP: 3, waitlist: false, startsAt: T, endsAt: nil, createdAt: T, highWater: T)
        #expect(!Rules.exceedsIPLimit(sale, activeFromAddress: 2))
        #expect(Rules.exceedsIPLimit(sale, activeFromAddress: 3))
        #expect(!Rules.exceedsIPLimit(makeSale(), activeFromAddress: 1_000))
    }

    @Test func soldOutWhenNothingIsAvailableOrOverdue() {
        let log = FactLog()
        #expect(admit(makeSale(available: 0), active: 0, overdue: false, log: log).declineReason == .soldOut)
        #expect(log.asked == ["blocked", "active", "overdue"])
    }

    @Test func anOverdueHoldIsReclaimedWhenItFreesTheOnlyItem() {
        #expect(admit(makeSale(available: 0), active: 0, overdue: true, log: FactLog()) == .reclaimOverdueHold)
    }

    @Test func anAvailableItemIsHeldWithoutLookingForOverdueHolds() {
        let log = FactLog()
        #expect(admit(makeSale(available: 1), active: 0, overdue: true, log: log) == .hold)
        #expect(log.asked == ["blocked", "active"])
    }

    @Test func aHigherLimitAllowsMoreActiveBookings() {
        #expect(admit(makeSale(perUser: 3), active: 2, overdue: false, log: FactLog()) == .hold)
        #expect(admit(makeSale(perUser: 3), active: 3, overdue: false, log: FactLog()).declineReason == .userLimit)
    }

    @Test func declinesCarryTheContractsExitCodes() {
        let codes = [DeclineReason.notOpen: Int32(8), .blocked: 9, .userLimit: 7, .soldOut: 6]
        for (reason, code) in codes {
            let refusal = SaleError.declined(Decline(reason, makeSale(), state: .open))
            #expect(refusal.code.exitCode == code)
            #expect(refusal.code.rawValue == reason.rawValue)
        }
    }

    @Test func aQueuedRequestWaitsInAWaitlistedSaleWhileItemsAreHeld() {
        let sale = makeSale(available: 0, waitlist: true)
        #expect(admit(sale, fromQueue: true, active: 0, overdue: false, log: FactLog()) == .wait)
        // Without the waitlist, or with nothing held, it is sold out.
        #expect(admit(makeSale(available: 0), fromQueue: true, active: 0, overdue: false, log: FactLog()).declineReason == .soldOut)
    }

    @Test func aDirectBookingCannotJumpAWaitingLine() {
        let log = FactLog()
        let sale = makeSale(available: 3, waitlist: true)
        #expect(admit(sale, active: 0, overdue: false, lineWaiting: true, log: log).declineReason == .soldOut)
        #expect(admit(sale, active: 0, overdue: false, lineWaiting: false, log: FactLog()) == .hold)
        // The queue itself never asks whether a line is waiting: it is the line.
        let queueLog = FactLog()
        #expect(admit(sale, fromQueue: true, active: 0, overdue: false, lineWaiting: true, log: queueLog) == .hold)
        #expect(!queueLog.asked.contains("line"))
    }

    @Test func aDirectBookingDoesNotWaitInAWaitlistedSale() {
        #expect(admit(makeSale(available: 0, waitlist: true), active: 0, overdue: false, log: FactLog()).declineReason == .soldOut)
    }
}

extension Admission {
    var declineReason: DeclineReason? {
        if case .decline(let decline) = self { return decline.reason }
        return nil
    }
}

@Suite struct SaleStateTests {
    @Test func windowAndOperatorStateGiveTheContractsStates() {
        let end = T.adding(.seconds(3600))
        #expect(makeSale(startsAt: T.adding(.seconds(60))).state(at: T) == .scheduled)
        #expect(makeSale(endsAt: end).state(at: T) == .open)
        #expect(makeSale(endsAt: end).state(at: end) == .ended)
        #expect(makeSale(state: .paused, endsAt: end).state(at: T) == .paused)
        #expect(makeSale(state: .paused, endsAt: end).state(at: end) == .ended)
        #expect(makeSale(state: .closed, endsAt: end).state(at: end) == .closed)
    }

    /// When the state next changes by the clock: what a follower of the queue wakes for.
    @Test func theNextTimedStateChangeIsTheStartOrEndAhead() {
        let start = T.adding(.seconds(60))
        let end = T.adding(.seconds(3600))
        #expect(makeSale(startsAt: start, endsAt: end).nextTimedStateChange(after: T) == start)
        #expect(makeSale(startsAt: start, endsAt: end).nextTimedStateChange(after: start) == end)
        #expect(makeSale(startsAt: start, endsAt: end).nextTimedStateChange(after: end) == nil)
        #expect(makeSale(endsAt: nil).nextTimedStateChange(after: T) == nil)
        #expect(makeSale(state: .paused, endsAt: end).nextTimedStateChange(after: T) == end)
        #expect(makeSale(state: .closed, startsAt: start, endsAt: end).nextTimedStateChange(after: T) == nil)
    }

    @Test func theSaleOpensExactlyAtStartsAt() {
        let start = T.adding(.seconds(60))
        #expect(makeSale(startsAt: start).state(at: Instant(milliseconds: start.milliseconds - 1)) == .scheduled)
        #expect(makeSale(startsAt: start).state(at: start) == .open)
    }

    @Test func decisionsNeverUseATimeBeforeTheHighWaterMark() {
        let sale = makeSale()
        #expect(sale.decisionTime(clock: Instant(milliseconds: T.milliseconds - 60_000)) == T)
        #expect(sale.decisionTime(clock: T.adding(.seconds(1))) == T.adding(.seconds(1)))
    }

    @Test func pauseResumeAndCloseMoveOnlyWhereAllowed() throws {
        #expect(try Rules.change(makeSale(), by: .pause, at: T) == .paused)
        #expect(try Rules.change(makeSale(state: .paused), by: .pause, at: T) == nil)
        #expect(try Rules.change(makeSale(state: .paused), by: .resume, at: T) == .open)
        #expect(try Rules.change(makeSale(), by: .resume, at: T) == nil)
        #expect(try Rules.change(makeSale(), by: .close, at: T) == .closed)
        #expect(try Rules.change(makeSale(state: .closed), by: .close, at: T) == nil)
        #expect(throws: SaleError.saleClosed(SaleID(trusted: "s1"))) { try Rules.change(makeSale(state: .closed), by: .resume, at: T) }
        let ended = makeSale(endsAt: T)
        #expect(throws: SaleError.saleEnded(SaleID(trusted: "s1"), at: T)) { try Rules.change(ended, by: .pause, at: T) }
        #expect(try Rules.change(ended, by: .close, at: T) == .closed)
    }

    @Test func definitionRefusesWindowsThatEndBeforeTheyStart() {
        #expect(throws: SaleError.endsBeforeStarts(starts: T, ends: T)) {
            try SaleDefinition(id: SaleID("s1"), name: nil, inventory: 1, hold: .seconds(300), perUser: 1,
                               startsAt: T, endsAt: T)
        }
    }

    @Test func definitionRefusesZeroHoldAndZeroLimit() {
        #expect(throws: SaleError.settingOutOfRange(.hold)) {
            try SaleDefinition(id: SaleID("s1"), name: nil, inventory: 1, hold: .seconds(0), perUser: 1, startsAt: T, endsAt: nil)
        }
        #expect(throws: SaleError.settingOutOfRange(.perUser)) {
            try SaleDefinition(id: SaleID("s1"), name: nil, inventory: 1, hold: .seconds(300), perUser: 0, startsAt: T, endsAt: nil)
        }
    }
}

@Suite struct SeededTotalTests {
    @Test func aTotalGrowsUpToTheMaximumAndIsSetNoLowerThanWhatIsCommitted() throws {
        let sale = makeSale(available: 3)
        #expect(try Rules.seededTotal(of: sale, count: 2, exactly: false) == sale.counters.total + 2)
        #expect(throws: SaleError.totalOverMaximum(sale.id)) {
            try Rules.seededTotal(of: sale, count: maximumInventory, exactly: false)
        }
        // 7 held, none booked.
        #expect(try Rules.seededTotal(of: sale, count: 7, exactly: true) == 7)
        #expect(throws: SaleError.totalBelowCommitted(sale.id, committed: 7)) {
            try Rules.seededTotal(of: sale, count: 6, exactly: true)
        }
    }
}
