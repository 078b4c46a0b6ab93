import FlashSaleCore
import Glibc

/// Reads and parses requests on a second thread, a few thousand ahead of the caller, so
/// that on a machine with two cores `submit --file` parses its input while SQLite writes
/// what was parsed before (parsing is about 40% of a bulk submit's CPU). Outcomes arrive
/// in input order, and so does a read error, after the outcomes before it.
///
/// Not for `book --stream`, which must answer each line as soon as it can, not once a
/// batch is full. A POSIX thread, not Foundation's Thread, which would add 60 MB of
/// Foundation and ICU to the static binary.
final class ReadAhead: @unchecked Sendable {
    private static let batchSize = 4_096
    /// Batches parsed and not yet taken. With the one being taken and the one being read,
    /// at most six batches are alive: about 6 MiB for W1's requests, 40 MiB at worst, with
    /// every field at its largest; never more, whatever the length of the input.
    private static let depth = 4

    /// The producer's alone once its thread runs; the caller's if no thread could start.
    private var reader: RequestReader
    private var hasThread = false

    // Shared by both threads, guarded by `lock`.
    private let lock = Lock()
    private var ready: [[ReadOutcome]] = []
    private var finished = false
    private var failure: (any Error)?
    private var stopped = false

    // The caller's thread only: the batch being taken, last outcome first, so that each
    // is moved out by popLast rather than copied.
    private var current: [ReadOutcome] = []

    init(_ reader: RequestReader) {
        self.reader = reader
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let started = pthread_create(&thread, nil, { context in
            guard let context else { return nil }
            Unmanaged<ReadAhead>.fromOpaque(context).takeRetainedValue().produce()
            return nil
        }, context)
        if started == 0 {
            hasThread = true
            pthread_detach(thread)
        } else {
            // No thread to be had (EAGAIN): read in line, as before there was read-ahead.
            Unmanaged<ReadAhead>.fromOpaque(context).release()
        }
    }

    /// The next outcome in input order, nil at the end of the input.
    func next() throws -> ReadOutcome? {
        guard hasThread else { return try reader.next() }
        if current.isEmpty {
            let batch: [ReadOutcome]? = lock.waiting(until: { !ready.isEmpty || finished }) {
                ready.isEmpty ? nil : ready.removeFirst()
            }
            guard let batch else {
                // Finished, and everything before the end (or the error) already taken.
                if let failure = lock.waiting(until: { true }, { failure }) { throw failure }
                return nil
            }
            current = batch
        }
        return current.popLast()
    }

    /// The caller takes no more: the reading thread stops at its next batch. It is not
    /// waited for, since it may be blocked reading a pipe that never ends.
    func stop() {
        lock.waiting(until: { true }) { stopped = true }
    }

    private func produce() {
        var batch: [ReadOutcome] = []
        batch.reserveCapacity(Self.batchSize)
        var atEnd = false
        while !atEnd {
            var error: (any Error)?
            do {
                while batch.count < Self.batchSize, let outcome = try reader.next() {
                    batch.append(outcome)
                }
                atEnd = batch.count < Self.batchSize
            } catch let thrown {
                error = thrown
                atEnd = true
            }
            batch.reverse()
            let keepGoing = lock.waiting(until: { ready.count < Self.depth || stopped }) {
                guard !stopped else { return false }
                if !batch.isEmpty { ready.append(batch) }
                finished = atEnd
                failure = error
                return true
            }
            guard keepGoing else { return }
            batch.removeAll(keepingCapacity: true)
        }
    }
}

/// A mutex with one condition variable, for two threads that wait on each other's changes.
private final class Lock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(changed, nil)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
    }

    /// Waits until `condition` holds, runs `body` under the lock, and wakes the other thread.
    func waiting<T>(until condition: () -> Bool, _ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while !condition() {
            pthread_cond_wait(changed, mutex)
        }
        let result = body()
        pthread_cond_broadcast(changed)
        return result
    }
}
