import FlashSaleCore
import FlashSaleEngine

/// A run of rejections is one row of `rejected_run` (the schema's version 5), read back as
/// the events it holds: seq `first_seq + n - 1` is the rejection of its `n`th request.
extension PostgresTransaction {
    /// Up to `limit` of the runs' events after `after` and up to `bound`, in seq order.
    /// Only the part of each run that the page takes is sent.
    func rejectedRunEvents(after: Int64, through bound: Int64, sale: SaleID?, limit: Int64) throws -> [Event] {
        let saleCondition = sale.map { _ in " AND sale = $3" } ?? ""
        let runs = try session.firstRows(
            "SELECT first_seq, last_seq FROM rejected_run WHERE last_seq > $1 AND first_seq <= $2\(saleCondition) ORDER BY last_seq",
            [.int(after), .int(bound)] + (sale.map { [.text($0.text)] } ?? []), limit: limit
        ) { try RunSlice.Run(first: $0.int64("first_seq"), last: $0.int64("last_seq")) }
        let slices = RunSlice.page(of: runs, after: after, through: bound, limit: limit)
        guard !slices.isEmpty else { return [] }
        // The requests at their limit by a join: `= ANY(limited)` for each request would read
        // the list of a run rejected at their limit (one user asking again and again), 4,096
        // long, for each of the page's requests.
        return try session.rows(
            """
            WITH item AS (
                SELECT run.last_seq, run.first_seq + want.first - 2 + item.position AS seq, run.at, run.sale, item.user_id,
                    item.request, run.detail, run.limited_detail
                FROM unnest($1::bigint[], $2::int[], $3::int[]) AS want(last_seq, first, last)
                JOIN rejected_run AS run USING (last_seq)
                CROSS JOIN LATERAL unnest(run.requests[want.first:want.last], run.users[want.first:want.last])
                    WITH ORDINALITY AS item(request, user_id, position)),
            limited AS (SELECT last_seq, unnest(limited) AS request FROM rejected_run WHERE last_seq = ANY($1))
            SELECT 'rejected' AS kind, item.seq, item.at, item.sale, NULL::text AS booking, item.user_id AS "user", item.request,
                CASE WHEN limited.request IS NULL THEN item.detail ELSE item.limited_detail END AS detail
            FROM item LEFT JOIN limited USING (last_seq, request)
            ORDER BY item.seq
            """,
            [.ints(slices.map(\.lastSeq)), .ints(slices.map(\.first)), .ints(slices.map(\.last))], decodeEvent)
    }
}

/// The SQL that reads a run's rows as rejections, shared by the statements that do.
enum RejectedRuns {
    /// A query of each request that sale `$1`'s runs rejected (`request`), for a join
    /// with the sale's requests.
    static let ofSale = "SELECT unnest(requests) AS request FROM rejected_run WHERE sale = $1"

    /// The last event's seq (0 for none), a run's or another's.
    static let lastSeq = "greatest((SELECT max(seq) FROM event), (SELECT max(last_seq) FROM rejected_run), 0)"
}

/// The part of one run that a page of events takes: its requests `first...last` (from 1).
struct RunSlice: Equatable {
    /// A run's seqs.
    struct Run {
        let first: Int64
        let last: Int64
    }

    let lastSeq: Int64
    let first: Int64
    let last: Int64

    /// The parts of `runs` (in seq order) that hold the first `limit` of their events
    /// after `after` and up to `bound`.
    static func page(of runs: [Run], after: Int64, through bound: Int64, limit: Int64) -> [RunSlice] {
        var left = limit
        var slices: [RunSlice] = []
        for run in runs where left > 0 {
            let from = max(after + 1, run.first)
            let to = min(run.last, bound)
            guard from <= to else { continue }
            let taken = min(to - from + 1, left)
            slices.append(RunSlice(lastSeq: run.last, first: from - run.first + 1, last: from - run.first + taken))
            left -= taken
        }
        return slices
    }
}
