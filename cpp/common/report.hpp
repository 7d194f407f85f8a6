// What a client counts, how it names failures, and how it reports them (RESULT line,
// human line, samples file, exit status), the same for every design.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "options.hpp"

namespace echo {

enum class Failure {
    Connect,   // refused, unreachable, out of ports or descriptors
    Timeout,   // a connect, write or read waited longer than --timeout
    Reset,     // the peer reset the connection
    Closed,    // the peer closed before the whole echo arrived (a short read)
    Mismatch,  // an echoed byte differs from what was sent
    Io,        // anything else the kernel reported
};

// Prints the first failure of each kind to stderr; the rest are only counted.
// Thread-safe: thread-per-connection clients share one.
class FailureLog {
public:
    explicit FailureLog(std::string program) : program_(std::move(program)) {}
    void record(Failure kind, std::string_view detail);
    // Warm-up failures are left out of RESULT; this says how many there were (if any).
    void warmup_failed(std::uint64_t count) const;

private:
    std::string program_;
    std::array<std::atomic<bool>, 6> seen_{};
};

// Failure kind for an errno seen while writing or reading an established connection.
Failure failure_for_errno(int error);

// Counts of one connection, one thread or one whole run; merged upwards.
struct Tally {
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    std::uint64_t bytes = 0;
    std::uint64_t conn_min = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t conn_max = 0;
    std::vector<std::uint64_t> samples;  // nanoseconds, one per ok request

    void succeeded(std::uint64_t latency_ns, std::uint64_t payload_bytes) {
        ++ok;
        bytes += payload_bytes;
        samples.push_back(latency_ns);
    }
    // Called once per connection when it is done, with how many requests it completed.
    void connection_finished(std::uint64_t completed) {
        conn_min = std::min(conn_min, completed);
        conn_max = std::max(conn_max, completed);
    }
    void merge(Tally&& other);
};

// CPU time this process has used so far, all threads (getrusage RUSAGE_SELF).
struct CpuTime {
    std::uint64_t user_us = 0;
    std::uint64_t sys_us = 0;
};

// The measured window. start() prints MEASURING, where the harness takes its first readings of
// the server's CPU and the cores' busy time, so the client's own start-up, warm-up and connects
// stay out of every CPU figure; RESULT reports the client's CPU between start() and stop().
class MeasuredWindow {
public:
    void start();
    void stop();  // the first call ends the window; later ones change nothing
    CpuTime cpu() const;

private:
    CpuTime start_{};
    CpuTime stop_{};
    bool stopped_ = false;
};

// Writes the samples file, prints the RESULT and human lines on stdout, and returns the
// exit status the contract asks for (0 all ok, 1 any failure).
int finish_client(const ClientOptions& options, Tally& total, std::uint64_t wall_ns, CpuTime cpu,
                  std::string_view program);

}  // namespace echo
