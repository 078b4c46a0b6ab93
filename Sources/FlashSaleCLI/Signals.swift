import FlashSaleCore
import FlashSaleStore
import Glibc

/// SIGINT, SIGTERM and SIGHUP (those not ignored: `heeded`) for `process --follow` and `events
/// --follow`: blocked, so they never interrupt a batch, and waited for with a timeout, so
/// the idle wait is the signal check too; or, for a command that must clean up whatever
/// it is doing (`rehearse`, `backup`), waited for by a thread of its own (`whenReceived`).
/// No handler, no global state.
/// Blocked on the thread that makes it and inherited by the threads started after: make
/// it before the store is opened, whose PostgreSQL connection starts an event loop thread.
/// A thread started before, with the signals unblocked, is where the kernel sends them
/// whenever the main thread is not waiting for them, and their default action ends the
/// process (a CI run saw `process --follow` on PostgreSQL end by SIGTERM instead of
/// exiting 0).
package struct StopSignals {
    private var set = sigset_t()

    init() {
        sigemptyset(&set)
        for signal in StopSignals.heeded { sigaddset(&set, signal) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// The stop signals a long-running command (and `serve`) heeds: SIGINT, SIGTERM and
    /// SIGHUP, less those ignored when it started. SIGHUP stops it as SIGTERM does (one
    /// started in a terminal gets it when the terminal closes, and its default action
    /// ended the process at once, as a kill does), unless `nohup` ignores it; a shell
    /// starts a script's background job (`cmd &`) with SIGINT ignored, so that the Ctrl-C
    /// meant for the script does not stop it (found by probing: it did). An ignored one
    /// is left so: a blocked signal is kept pending even when ignored, and would stop it.
    package static let heeded: [Int32] = [SIGINT, SIGTERM, SIGHUP].filter { signal in
        var action = sigaction()
        sigaction(signal, nil, &action)
        return unsafeBitCast(action.__sigaction_handler.sa_handler, to: Int.self) != unsafeBitCast(SIG_IGN, to: Int.self)
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

    /// Ends a command a stop signal stopped, from `whenReceived`'s `stop`: `line` (what the
    /// command leaves) on stderr, over its progress line if it shows one, and with `json`
    /// as the error object on stdout too, as every failure is; then exit 130, without the
    /// exit handlers of a process whose other threads are still at work.
    package static func exitStopped(saying line: String, overProgress: Bool = false, json: Bool) -> Never {
        DatabaseCreations.waitForThoseUnderWay()
        let error = FlashSaleError.interrupted(line)
        // stderr first: a reader of stdout that has gone would end the process (SIGPIPE)
        // before the line.
        for (descriptor, text) in [(2, (overProgress ? "\r" : "") + "flashsale: \(line)\n"),
                                   (1, json ? Output.errorObject(error) + "\n" : "")] where !text.isEmpty {
            let sink = FileSink(descriptor: Int32(descriptor))
            sink.write(text)
            sink.flush()
        }
        _exit(error.exitCode)
    }

    /// Runs `stop` on a thread of its own when a stop signal comes (or has come since
    /// `init`), whatever the other threads are doing; `stop` ends the process. A signal
    /// that comes before the thread runs waits for it, blocked.
    func whenReceived(_ stop: @escaping @Sendable () -> Never) {
        let waiter = Waiter(set: set, stop: stop)
        let context = Unmanaged.passRetained(waiter).toOpaque()
        var thread = pthread_t()
        guard pthread_create(&thread, nil, { context in
            guard let context else { return nil }
            Unmanaged<Waiter>.fromOpaque(context).takeRetainedValue().wait()
        }, context) == 0 else {
            // No thread (out of resources): the signals keep their default action, which ends
            // the process without the clean-up, as before there was one.
            Unmanaged<Waiter>.fromOpaque(context).release()
            var mask = set
            pthread_sigmask(SIG_UNBLOCK, &mask, nil)
            return
        }
        pthread_detach(thread)
    }

    /// `whenReceived`, for a command that may stop at some moments only: once a stop signal
    /// came, `stopIfItMay` is asked every millisecond, and ends the process at the first
    /// moment it may (deciding under the lock that keeps the command from moving on).
    func stopAtFirstChance(_ stopIfItMay: @escaping @Sendable () -> Void) {
        whenReceived {
            while true {
                stopIfItMay()
                usleep(1000)
            }
        }
    }

    private final class Waiter: @unchecked Sendable {
        private var set: sigset_t
        private let stop: @Sendable () -> Never

        init(set: sigset_t, stop: @escaping @Sendable () -> Never) {
            self.set = set
            self.stop = stop
        }

        func wait() -> Never {
            var signal: Int32 = 0
            while sigwait(&set, &signal) != 0 {}
            stop()
        }
    }
}
