/// Looks at `condition` every `interval` until it holds or `limit` is used up; whether it
/// held. Async, so that the test's other tasks (clients, a stream's writer) go on meanwhile.
///
/// The limit is counted in looks (`limit / interval` of them, and one more), not read off
/// the clock. Under the whole suite's load the concurrency pool's two threads are taken for
/// seconds at a time by tests that wait for a subprocess: a task woken after a clock's
/// deadline failed at its first look, before the task it waited for had had its turn (a CI
/// run: a stream that had ended was reported going on). Each look takes at least
/// `interval`, so the wait is never shorter than asked, only longer on a starved pool: a
/// check that something happens *within* a limit reads the clock instead
/// (`ServedDatabase.exit(within:)`). A cancelled task stops looking.
func eventually(within limit: Duration, every interval: Duration = .milliseconds(5),
                _ condition: () async throws -> Bool) async rethrows -> Bool {
    precondition(interval > .zero, "a look every \(interval) would never wait")
    for _ in 0..<max(1, Int(limit / interval)) {
        if try await condition() { return true }
        guard (try? await Task.sleep(for: interval)) != nil else { break }
    }
    return try await condition()
}
