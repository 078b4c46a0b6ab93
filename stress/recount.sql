-- The independent recount: what the tables say happened, checked against what the
-- contract says may happen. Written from the tables' meaning (man page, contract), not
-- from `verify`; it reads the event log as the history and the bookings as the outcome.
-- A request's decision is its event: `event.request = R` with kind 'held' (accepted,
-- event.booking is the new hold), 'accepted' (accepted, its key already had a booking)
-- or 'rejected' (event.detail is the reason); no such event: still queued. It never
-- reads request.status, reason, booking or decided_at.
--
-- Prints one line per violation, `violation|<check>|<what>`, then one `recount|...` line
-- of figures. Run: sqlite3 -readonly DB < recount.sql

.bail on
.headers off
.mode list
.separator |

-- Each booking's history from the event log: when it was held, confirmed and ended.
CREATE TEMP TABLE history AS
SELECT booking,
       sum(kind = 'held') AS held_events, min(CASE kind WHEN 'held' THEN seq END) AS held_seq,
       min(CASE kind WHEN 'held' THEN at END) AS held_at,
       sum(kind = 'booked') AS booked_events, min(CASE kind WHEN 'booked' THEN seq END) AS booked_seq,
       min(CASE kind WHEN 'booked' THEN at END) AS booked_at,
       sum(kind IN ('cancelled', 'expired')) AS end_events,
       min(CASE WHEN kind IN ('cancelled', 'expired') THEN seq END) AS end_seq,
       min(CASE WHEN kind IN ('cancelled', 'expired') THEN at END) AS end_at,
       min(CASE WHEN kind IN ('cancelled', 'expired') THEN kind END) AS end_kind
FROM event WHERE booking IS NOT NULL AND kind IN ('held', 'booked', 'cancelled', 'expired') GROUP BY booking;
CREATE INDEX temp.history_by_booking ON history (booking);
CREATE TEMP TABLE life AS
SELECT b.id, b.sale, b.user, b.status, b.created_at, b.expires_at, b.confirmed_at, b.cancelled_at, b.expired_at, b.key,
       coalesce(h.held_events, 0) AS held_events, h.held_seq, h.held_at,
       coalesce(h.booked_events, 0) AS booked_events, h.booked_seq, h.booked_at,
       coalesce(h.end_events, 0) AS end_events, h.end_seq, h.end_at, h.end_kind
FROM booking b LEFT JOIN history h ON h.booking = b.id;
CREATE INDEX temp.life_by_id ON life (id);
CREATE INDEX temp.life_by_user ON life (sale, user, held_seq);

-- Every event of a sale replayed in order: items in use (held +1, cancelled/expired -1)
-- and the total (set by sale_created 'inventory N' or inventory_seeded 'set N', raised
-- by 'add N'), and the sale's operator state (open/paused/closed) after each event.
CREATE TEMP TABLE replay AS
WITH ev AS (
    SELECT seq, at, sale, kind, booking, user, request, detail,
           CASE WHEN kind = 'sale_created' OR (kind = 'inventory_seeded' AND detail LIKE 'set %') THEN 1 ELSE 0 END AS resets,
           CASE WHEN kind IN ('sale_created', 'inventory_seeded')
                THEN CAST(substr(detail, instr(detail, ' ') + 1) AS INTEGER) ELSE 0 END AS n,
           CASE kind WHEN 'held' THEN 1 WHEN 'cancelled' THEN -1 WHEN 'expired' THEN -1 ELSE 0 END AS d,
           CASE kind WHEN 'sale_created' THEN 1 WHEN 'sale_paused' THEN 1 WHEN 'sale_resumed' THEN 1
                     WHEN 'sale_closed' THEN 1 ELSE 0 END AS state_change
    FROM event WHERE sale IN (SELECT id FROM sale)
), grouped AS (
    SELECT *, sum(resets) OVER w AS grp, sum(d) OVER w AS in_use, sum(state_change) OVER w AS sgrp,
           lag(at) OVER w AS previous_at
    FROM ev WINDOW w AS (PARTITION BY sale ORDER BY seq)
)
SELECT *, sum(n) OVER (PARTITION BY sale, grp ORDER BY seq) AS total,
       first_value(kind) OVER (PARTITION BY sale, sgrp ORDER BY seq) AS state_event
FROM grouped;
CREATE INDEX temp.replay_by_seq ON replay (seq);
CREATE INDEX temp.replay_by_sale ON replay (sale, seq);

CREATE TEMP TABLE violation (checkname TEXT, what TEXT);

-- No oversell, at any moment: never more items in use than the sale had.
INSERT INTO violation
SELECT 'oversell', 'sale ' || sale || ' after event ' || seq || ' (' || kind || '): ' || in_use || ' items in use of ' || total
FROM replay WHERE in_use > total;
INSERT INTO violation
SELECT 'negative-stock', 'sale ' || sale || ' after event ' || seq || ': ' || in_use || ' items in use'
FROM replay WHERE in_use < 0;

-- Time never runs backwards within a sale (the high-water mark).
INSERT INTO violation
SELECT 'clock-backwards', 'sale ' || sale || ' event ' || seq || ' (' || kind || ') at ' || at || ' after one at ' || previous_at
FROM replay WHERE at < previous_at;

-- The sale's row against its bookings and its history.
INSERT INTO violation
SELECT 'counters', 'sale ' || s.id || ': total ' || s.total || ' but the event log adds up to ' || coalesce(r.total, 'nothing')
FROM sale s LEFT JOIN replay r ON r.seq = (SELECT max(seq) FROM replay WHERE sale = s.id)
WHERE r.total IS NOT s.total;
-- Counters recounted from the bookings: held and booked items are exactly the bookings
-- in those states (no oversell), and every other item is available (no undersell).
CREATE TEMP TABLE bycount AS
SELECT s.id AS sale, s.total, s.available, s.held, s.booked, s.cancelled, s.expired,
       coalesce(c.n_held, 0) AS n_held, coalesce(c.n_booked, 0) AS n_booked,
       coalesce(c.n_cancelled, 0) AS n_cancelled, coalesce(c.n_expired, 0) AS n_expired
FROM sale s LEFT JOIN (
    SELECT sale, sum(status = 'held') AS n_held, sum(status = 'booked') AS n_booked,
           sum(status = 'cancelled') AS n_cancelled, sum(status = 'expired') AS n_expired
    FROM booking GROUP BY sale
) c ON c.sale = s.id;
INSERT INTO violation SELECT 'oversell', 'sale ' || sale || ': ' || (n_held + n_booked) || ' bookings held or booked, total ' || total
FROM bycount WHERE n_held + n_booked > total;
INSERT INTO violation SELECT 'undersell', 'sale ' || sale || ': available ' || available || ' but total ' || total || ' less '
    || n_held || ' held and ' || n_booked || ' booked bookings is ' || (total - n_held - n_booked)
FROM bycount WHERE available <> total - n_held - n_booked;
INSERT INTO violation SELECT 'counters', 'sale ' || sale || ': held ' || held || '/' || n_held || ', booked ' || booked || '/' || n_booked
    || ', cancelled ' || cancelled || '/' || n_cancelled || ', expired ' || expired || '/' || n_expired || ' (counter/bookings)'
FROM bycount WHERE held <> n_held OR booked <> n_booked OR cancelled <> n_cancelled OR expired <> n_expired;
INSERT INTO violation SELECT 'history', 'sale ' || s.sale || ': ' || (n_held + n_booked) || ' bookings in use but the event log leaves '
    || coalesce(r.in_use, 0)
FROM bycount s LEFT JOIN replay r ON r.seq = (SELECT max(seq) FROM replay WHERE sale = s.sale)
WHERE coalesce(r.in_use, 0) <> n_held + n_booked;

-- Each booking: one hold, at most one confirm, at most one end, and a status that is
-- where its events lead; a confirm strictly before expiry, an expiry at or after it.
INSERT INTO violation SELECT 'booking-history', 'booking ' || id || ' (' || status || '): ' || held_events || ' held, '
    || booked_events || ' booked, ' || end_events || ' cancelled/expired events'
FROM life WHERE held_events <> 1 OR booked_events > 1 OR end_events > 1
    OR status <> CASE WHEN end_events = 1 THEN end_kind WHEN booked_events = 1 THEN 'booked' ELSE 'held' END
    OR (end_kind = 'expired' AND booked_events > 0)
    OR (booked_seq IS NOT NULL AND end_seq IS NOT NULL AND end_seq < booked_seq);
INSERT INTO violation SELECT 'booking-times', 'booking ' || id || ': created ' || created_at || ', held event at ' || held_at
    || ', expires ' || expires_at || ' (hold ' || (SELECT hold_ms FROM sale WHERE sale.id = life.sale) || ' ms)'
FROM life WHERE created_at IS NOT held_at
    OR expires_at <> min(created_at + (SELECT hold_ms FROM sale WHERE sale.id = life.sale), 253402300799999);
INSERT INTO violation SELECT 'confirm-after-expiry', 'booking ' || id || ' confirmed at ' || booked_at || ', expires ' || expires_at
FROM life WHERE booked_at IS NOT NULL AND (booked_at >= expires_at OR confirmed_at IS NOT booked_at);
INSERT INTO violation SELECT 'expired-early', 'booking ' || id || ' expired by an event at ' || end_at || ', expires ' || expires_at
FROM life WHERE end_kind = 'expired' AND end_at < expires_at;

-- No user over the limit, at any moment: when a hold is made, the user's bookings in use
-- then (held before it, not yet ended, and confirmed or not yet past expiry) number at
-- most per_user, the new one included.
INSERT INTO violation
SELECT 'user-limit', 'sale ' || n.sale || ' user ' || quote(n.user) || ' had ' || (
        SELECT count(*) FROM life o
        WHERE o.sale = n.sale AND o.user = n.user AND o.held_seq <= n.held_seq
          AND (o.end_seq IS NULL OR o.end_seq > n.held_seq)
          AND ((o.booked_seq IS NOT NULL AND o.booked_seq < n.held_seq) OR o.expires_at > n.held_at)
    ) || ' active bookings after holding ' || n.id || ', limit ' || s.per_user
FROM life n JOIN sale s ON s.id = n.sale
WHERE (
        SELECT count(*) FROM life o
        WHERE o.sale = n.sale AND o.user = n.user AND o.held_seq <= n.held_seq
          AND (o.end_seq IS NULL OR o.end_seq > n.held_seq)
          AND ((o.booked_seq IS NOT NULL AND o.booked_seq < n.held_seq) OR o.expires_at > n.held_at)
    ) > s.per_user;

-- Requests: decided exactly once, by an event that says how; in FIFO order per sale;
-- never before they were submitted; each rejection for a reason that held at that moment.
CREATE TEMP TABLE decision AS
SELECT e.seq, e.at, e.sale, e.kind, e.booking, e.user, e.request, e.detail
FROM event e WHERE e.request IS NOT NULL AND e.kind IN ('held', 'accepted', 'rejected');
CREATE INDEX temp.decision_by_request ON decision (request);
CREATE TEMP TABLE decided AS
SELECT r.id, r.sale, r.user, r.key, r.submitted_at, count(d.seq) AS decisions, min(d.seq) AS seq
FROM request r LEFT JOIN decision d ON d.request = r.id GROUP BY r.id;
INSERT INTO violation SELECT 'decided-twice', 'request ' || id || ' has ' || decisions || ' decisions'
FROM decided WHERE decisions > 1;
INSERT INTO violation SELECT 'undecided', 'request ' || id || ' (sale ' || sale || ') is still queued'
FROM decided WHERE decisions = 0;
INSERT INTO violation SELECT 'decision-orphan', 'event ' || d.seq || ' decides request ' || d.request || ', which does not exist'
FROM decision d WHERE d.request NOT IN (SELECT id FROM request);
INSERT INTO violation SELECT 'decision-mismatch', 'request ' || r.id || ' (' || d.kind || ' at event ' || d.seq || '): ' ||
    CASE WHEN d.sale <> r.sale THEN 'sale ' || d.sale || ' is not the request''s ' || r.sale
         WHEN d.at < r.submitted_at THEN 'decided at ' || d.at || ' before its submission at ' || r.submitted_at
         WHEN d.kind = 'rejected' THEN 'rejected for ' || quote(d.detail)
         WHEN b.id IS NULL THEN 'its booking ' || quote(d.booking) || ' does not exist'
         ELSE 'its booking ' || b.id || ' is user ' || quote(b.user) || ' key ' || quote(b.key) END
FROM decision d JOIN request r ON r.id = d.request LEFT JOIN booking b ON b.id = d.booking
WHERE d.sale <> r.sale OR d.at < r.submitted_at
    OR (d.kind = 'rejected' AND (d.detail IS NULL OR d.detail NOT IN ('sold_out', 'user_limit', 'not_open', 'blocked', 'conflict')))
    OR (d.kind IN ('held', 'accepted') AND (b.id IS NULL OR b.sale <> r.sale OR b.user <> r.user OR b.key IS NOT r.key))
    OR (d.kind = 'accepted' AND (r.key IS NULL OR (SELECT held_seq FROM life WHERE life.id = b.id) > d.seq));
INSERT INTO violation SELECT 'fifo', 'sale ' || sale || ': request ' || request || ' decided at event ' || seq || ' after request ' || previous
FROM (SELECT *, lag(request) OVER (PARTITION BY sale ORDER BY seq) AS previous FROM decision)
WHERE request < previous;
-- sold_out only when every item was in use; user_limit only when the user had per_user
-- active bookings; not_open only when the sale was closed, ended or not started.
INSERT INTO violation SELECT 'rejected-wrongly', 'request ' || d.request || ' rejected sold_out at event ' || d.seq
    || ' with ' || r.in_use || ' of ' || r.total || ' items in use'
FROM decision d JOIN replay r ON r.seq = d.seq
WHERE d.kind = 'rejected' AND d.detail = 'sold_out' AND r.in_use < r.total;
INSERT INTO violation SELECT 'rejected-wrongly', 'request ' || d.request || ' rejected user_limit at event ' || d.seq
    || ' with ' || (SELECT count(*) FROM life o
        WHERE o.sale = d.sale AND o.user = d.user AND o.held_seq < d.seq AND (o.end_seq IS NULL OR o.end_seq > d.seq)
          AND ((o.booked_seq IS NOT NULL AND o.booked_seq < d.seq) OR o.expires_at > d.at)) || ' active bookings'
FROM decision d JOIN sale s ON s.id = d.sale
WHERE d.kind = 'rejected' AND d.detail = 'user_limit'
  AND (SELECT count(*) FROM life o
        WHERE o.sale = d.sale AND o.user = d.user AND o.held_seq < d.seq AND (o.end_seq IS NULL OR o.end_seq > d.seq)
          AND ((o.booked_seq IS NOT NULL AND o.booked_seq < d.seq) OR o.expires_at > d.at)) < s.per_user;
INSERT INTO violation SELECT 'rejected-wrongly', 'request ' || d.request || ' rejected not_open at event ' || d.seq
    || ' while the sale was ' || r.state_event
FROM decision d JOIN replay r ON r.seq = d.seq JOIN sale s ON s.id = d.sale
WHERE d.kind = 'rejected' AND d.detail = 'not_open' AND r.state_event <> 'sale_closed'
  AND d.at >= s.starts_at AND (s.ends_at IS NULL OR d.at < s.ends_at);
-- No hold made while the sale was paused or closed.
INSERT INTO violation SELECT 'hold-while-not-open', 'booking ' || r.booking || ' held at event ' || r.seq || ' after ' || r.state_event
FROM replay r WHERE r.kind = 'held' AND r.state_event IN ('sale_paused', 'sale_closed');

SELECT 'violation', checkname, what FROM violation;
SELECT 'recount', 'sales=' || (SELECT count(*) FROM sale), 'bookings=' || (SELECT count(*) FROM booking),
       'events=' || (SELECT count(*) FROM event), 'requests=' || (SELECT count(*) FROM request),
       'accepted=' || (SELECT count(*) FROM decision WHERE kind <> 'rejected'),
       'rejected=' || (SELECT count(*) FROM decision WHERE kind = 'rejected'),
       'violations=' || (SELECT count(*) FROM violation);
