#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

// prctl is variadic, which Swift cannot call: the one request flashsale makes, that the
// kernel send `signal` to this process when its parent ends, however it ends (SIGKILL too).
static inline int clinux_signal_when_parent_ends(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0UL, 0UL, 0UL);
}

// fallocate(2) is GNU only, which Swift's Glibc leaves out: reserves the blocks of a file's
// first `length` bytes without changing its size (FALLOC_FL_KEEP_SIZE), so that writing
// them later cannot fail for want of room. 0, or -1 with errno.
static inline int clinux_reserve(int descriptor, long long length) {
    return (int)syscall(SYS_fallocate, descriptor, 1 /* FALLOC_FL_KEEP_SIZE */, 0LL, length);
}
