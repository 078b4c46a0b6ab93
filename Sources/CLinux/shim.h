#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

// prctl is variadic, which Swift cannot call: the one request flashsale makes, that the
// kernel send `signal` to this process when its parent ends, however it ends (SIGKILL too).
// The parent is the thread that started it: the kernel sends it when that thread ends.
static inline int clinux_signal_when_parent_ends(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0UL, 0UL, 0UL);
}

// fallocate(2) is GNU only, which Swift's Glibc leaves out: reserves the blocks of a file's
// first `length` bytes without changing its size (FALLOC_FL_KEEP_SIZE), so that writing
// them later cannot fail for want of room. 0, or -1 with errno.
static inline int clinux_reserve(int descriptor, long long length) {
    return (int)syscall(SYS_fallocate, descriptor, FALLOC_FL_KEEP_SIZE, 0LL, length);
}

// renameat2(2) is GNU only too: gives `from` the name `to` only if nothing has it
// (RENAME_NOREPLACE), in one step, so the file never has both names. 0, or -1 with errno
// (EINVAL where the file system cannot, ENOSYS where the kernel cannot).
static inline int clinux_rename_noreplace(const char *from, const char *to) {
    return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}
