#include "system.hpp"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <system_error>
#include <utility>

namespace echo {

std::uint64_t raise_file_limit(std::uint64_t needed, const char* program) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
    if (needed == 0 || limit.rlim_cur < needed) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
    }
    if (needed != 0 && limit.rlim_cur < needed) {
        std::fprintf(stderr,
                     "%s: RLIMIT_NOFILE is %llu (hard limit) but about %llu descriptors are needed; "
                     "raise it with `ulimit -Hn` as root or in /etc/security/limits.conf\n",
                     program, static_cast<unsigned long long>(limit.rlim_cur),
                     static_cast<unsigned long long>(needed));
    }
    return limit.rlim_cur;
}

void reserve_descriptors(std::uint64_t count) {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    std::uint64_t cap = std::min<std::uint64_t>({count, limit.rlim_cur, 1u << 20});
    if (cap < 2) return;
    int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (probe < 0) return;
    // Placing a descriptor at the top of the range makes the kernel size the table for it.
    int top = static_cast<int>(cap - 1);
    if (::dup2(probe, top) == top) ::close(top);
    ::close(probe);
}

unsigned allowed_cpu_count() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    int count = CPU_COUNT(&set);
    return count > 0 ? static_cast<unsigned>(count) : 1u;
}

void ignore_sigpipe() { ::signal(SIGPIPE, SIG_IGN); }

namespace {
sigset_t termination_set() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}
}  // namespace

void block_termination_signals() {
    sigset_t set = termination_set();
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int wait_for_termination() {
    sigset_t set = termination_set();
    int signal = 0;
    while (::sigwait(&set, &signal) != 0) {
    }
    return signal;
}

namespace {
void* run_body(void* arg) {
    std::unique_ptr<std::function<void()>> body(static_cast<std::function<void()>*>(arg));
    (*body)();
    return nullptr;
}
}  // namespace

StackThread::StackThread(std::function<void()> body, std::size_t stack_bytes) {
    pthread_attr_t attr;
    ::pthread_attr_init(&attr);
    ::pthread_attr_setstacksize(&attr, stack_bytes);
    auto owned = std::make_unique<std::function<void()>>(std::move(body));
    pthread_t thread{};
    int rc = ::pthread_create(&thread, &attr, run_body, owned.get());
    ::pthread_attr_destroy(&attr);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "pthread_create");
    owned.release();  // the thread owns it now
    handle_ = thread;
    joinable_ = true;
}

StackThread::StackThread(StackThread&& other) noexcept
    : handle_(other.handle_), joinable_(std::exchange(other.joinable_, false)) {}

StackThread::~StackThread() { join(); }

void StackThread::join() {
    if (joinable_) {
        ::pthread_join(handle_, nullptr);
        joinable_ = false;
    }
}

void StackThread::detach() {
    if (joinable_) {
        ::pthread_detach(handle_);
        joinable_ = false;
    }
}

}  // namespace echo
