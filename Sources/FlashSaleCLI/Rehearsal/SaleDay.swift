import FlashSaleCore
import FlashSaleEngine

/// A part of the crowd, decided at one instant: `offset` after the opening.
struct CrowdSlice {
    let requests: ArraySlice<CrowdRequest>
    let offset: Span
}

extension Crowd {
    /// The crowd cut where the clock moves: the opening second, then the rest of the
    /// duration in at most `later` equal parts of whole seconds, each decided at its start.
    /// The cuts depend on the duration alone, so every path moves the clock at the same
    /// instants; `later` bounds the starts of `serve` that the HTTP path makes.
    func slices(duration: Span, later: Int64 = 9) -> [CrowdSlice] {
        let rest = max(duration.milliseconds - 1000, 0)
        let width = max(1, (rest + later * 1000 - 1) / (later * 1000)) * 1000
        var slices: [CrowdSlice] = []
        var start = requests.startIndex
        var from: Int64 = 0
        var to: Int64 = 1000
        while start < requests.endIndex {
            let end = requests[start...].firstIndex { $0.arrival >= to } ?? requests.endIndex
            if end > start { slices.append(CrowdSlice(requests: requests[start..<end], offset: Span(milliseconds: from))) }
            start = end
            from = to
            to += width
        }
        return slices
    }
}

/// What the day did to the stock, as the rehearsal's report counts it.
struct DayOutcome {
    /// The crowd's decisions, every slice's together.
    var timing = WaveTiming(decided: 0, seconds: 0, latencies: nil)
    /// The crowd's holds, in the order they were made.
    var holds: [Booking] = []
    var confirmed = 0
    var cancelled = 0
    var expired: Int64 = 0
    var returning = 0
    var resold = 0
    /// When the returning buyers came: the last sweep.
    var end: Instant
}

/// The sale day on a fixed clock moved by the rehearsal: each slice of the crowd at its
/// instant; the holds of a slice settled `settleAfter` later (a share confirmed, a share
/// cancelled, the rest left) and swept when they are due, as cron would; then, after the
/// last sweep, one buyer in ten of those turned away comes back for what returned, and
/// what they hold is confirmed. Steps at one instant run sweep, then settle, then book:
/// stock a sweep or a cancel returns is there for the buyers of that instant.
struct SaleDay {
    let setting: RehearsalSetting
    let path: RehearsalPath
    let opening: Instant
    let hold: Span
    let settleAfter: Span
    let confirmShare: (Int, Int)
    let cancelShare: (Int, Int)
    let returnShare: Int
    /// Runs `sweep` as a child at an instant, and says how many holds it expired.
    let sweep: (Instant) throws -> Int64
    /// Decides a wave through the path, with the live view the command shows.
    let wave: (_ requests: ArraySlice<CrowdRequest>, _ at: Instant, _ name: String) throws -> WaveTiming

    /// The name `wave` is given for the returning buyers.
    static let returningWave = "returning"

    private enum Step: Comparable {
        case sweep
        case settle(slice: Int)
        case book(slice: Int)
    }

    func run(_ crowd: Crowd, buyers: Int, slices: [CrowdSlice]) throws -> DayOutcome {
        let engine = setting.engine
        let sale = setting.sale
        var outcome = DayOutcome(end: opening.adding(hold))
        var steps = slices.indices.map { (at: opening.adding(slices[$0].offset), step: Step.book(slice: $0)) }
        var madeAt: [Int: (at: Instant, count: Int)] = [:]
        var lastSweep: Instant?
        while let next = steps.indices.min(by: { (steps[$0].at, steps[$0].step) < (steps[$1].at, steps[$1].step) }) {
            let (now, step) = steps.remove(at: next)
            switch step {
            case .book(let index):
                let name = index == 0 ? "opening" : "+\(slices[index].offset.milliseconds / 1000)s"
                let timing = try wave(slices[index].requests, now, name)
                outcome.timing = outcome.timing.adding(timing)
                let made = try engine.bookings(of: sale, status: .held, user: nil, clock: now).filter { $0.createdAt == now }
                guard !made.isEmpty else { continue }
                outcome.holds += made
                madeAt[index] = (now, made.count)
                steps.append((now.adding(settleAfter), .settle(slice: index)))
                let due = now.adding(hold)
                if !steps.contains(where: { $0.at == due && $0.step == .sweep }) { steps.append((due, .sweep)) }
            case .settle(let index):
                guard let made = madeAt[index] else { continue }
                let held = try engine.bookings(of: sale, status: .held, user: nil, clock: now).filter { $0.createdAt == made.at }
                let confirm = made.count * confirmShare.0 / confirmShare.1
                let cancel = made.count * cancelShare.0 / cancelShare.1
                try path.settle(confirm: Array(held.prefix(confirm)), cancel: Array(held.dropFirst(confirm).prefix(cancel)), at: now)
                outcome.confirmed += confirm
                outcome.cancelled += cancel
            case .sweep:
                outcome.expired += try sweep(now)
                lastSweep = now
            }
        }

        // The buyers turned away come back once the last holds have returned.
        let end = lastSweep ?? opening.adding(hold)
        outcome.end = end
        let returning = crowd.firstBuyers((buyers + returnShare - 1) / returnShare, except: Set(outcome.holds.map(\.user.text)))
            .map { $0.arriving(at: end.milliseconds - opening.milliseconds) }
        outcome.returning = returning.count
        _ = try wave(returning[...], end, SaleDay.returningWave)
        let resold = try engine.bookings(of: sale, status: .held, user: nil, clock: end)
        try path.settle(confirm: resold, cancel: [], at: end)
        outcome.resold = resold.count
        return outcome
    }
}

extension WaveTiming {
    /// Two waves' decisions as one.
    func adding(_ other: WaveTiming) -> WaveTiming {
        let latencies: [Double]? = latencies == nil && other.latencies == nil ? nil : (latencies ?? []) + (other.latencies ?? [])
        return WaveTiming(decided: decided + other.decided, seconds: seconds + other.seconds, latencies: latencies)
    }
}
