#include <signal.h>
#include <sys/prctl.h>

// prctl is variadic, which Swift cannot call: the one request flashsale makes, that the
// kernel send `signal` to this process when its parent ends, however it ends (SIGKILL too).
static inline int clinux_signal_when_parent_ends(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0UL, 0UL, 0UL);
}
