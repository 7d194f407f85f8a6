// Process-level pieces both designs need: clock, limits, CPUs, signals, small-stack threads.
#pragma once

#include <pthread.h>
#include <time.h>

#include <cstddef>
#include <cstdint>
#include <functional>

namespace echo {

// Monotonic nanoseconds; the only clock latencies and wall times are taken from.
inline std::uint64_t now_ns() {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

// Raises the soft RLIMIT_NOFILE towards the hard limit when it is below `needed`
// (0: as high as allowed). Says on stderr when even the hard limit is too low, naming it.
// Returns the soft limit in force afterwards.
std::uint64_t raise_file_limit(std::uint64_t needed, const char* program);

// Grows this process's descriptor table to hold `count` descriptors (capped by the soft
// RLIMIT_NOFILE). Call before starting threads. The kernel grows the table by doubling, and in
// a multi-threaded process each growth waits for an RCU grace period (milliseconds, tens of
// them on a busy machine; strace showed 8 and 51 ms socket() calls), right in the middle of a
// burst. Grown once up front while single-threaded, it costs nothing later.
void reserve_descriptors(std::uint64_t count);

// CPUs in this process's affinity mask (what `taskset` allowed), at least 1.
unsigned allowed_cpu_count();

// A write to a reset socket must be an EPIPE error to handle, not a signal that kills us.
void ignore_sigpipe();

// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts afterwards,
// so they are only ever consumed by wait_for_termination(). Call before starting threads.
void block_termination_signals();

// Waits for SIGINT or SIGTERM (blocked beforehand); returns the signal number.
int wait_for_termination();

// A joinable thread with a chosen stack size. std::thread cannot set one, and the default
// 8 MiB stack is what makes 10,000 threads cost gigabytes of address space.
class StackThread {
public:
    static constexpr std::size_t kSmallStack = 64 * 1024;

    // Throws std::system_error when the system refuses another thread.
    StackThread(std::function<void()> body, std::size_t stack_bytes);
    StackThread(StackThread&& other) noexcept;
    StackThread& operator=(StackThread&&) = delete;
    StackThread(const StackThread&) = delete;
    StackThread& operator=(const StackThread&) = delete;
    ~StackThread();  // joins, like std::jthread

    void join();
    void detach();

private:
    pthread_t handle_{};
    bool joinable_ = false;
};

}  // namespace echo
