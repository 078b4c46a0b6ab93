import Glibc

/// SIGINT and SIGTERM for `process --follow` and `events --follow`: blocked, so they never
/// interrupt a batch, and waited for with a timeout, so the idle wait is the signal check
/// too. No handler, no global state. Blocked on the thread that makes it and inherited by
/// the threads started after: make it before the store is opened, whose PostgreSQL
/// connection starts an event loop thread. A thread started before, with the signals
/// unblocked, is where the kernel sends them whenever the main thread is not waiting for
/// them, and their default action ends the process (a CI run saw `process --follow` on
/// PostgreSQL end by SIGTERM instead of exiting 0).
struct StopSignals {
    private var set = sigset_t()

    init() {
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Waits up to `milliseconds` for a stop signal; true if one came (now or earlier).
    func wait(milliseconds: Int) -> Bool {
        var timeout = timespec(tv_sec: milliseconds / 1000, tv_nsec: (milliseconds % 1000) * 1_000_000)
        var mask = set
        return sigtimedwait(&mask, nil, &timeout) > 0
    }

    /// Whether a stop signal is pending, without waiting.
    func received() -> Bool {
        wait(milliseconds: 0)
    }
}
