#include "report.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <numeric>

#include <sys/resource.h>

#include "net.hpp"

namespace echo {

namespace {
const char* failure_name(Failure kind) {
    switch (kind) {
        case Failure::Connect: return "connect";
        case Failure::Timeout: return "timeout";
        case Failure::Reset: return "reset";
        case Failure::Closed: return "short read";
        case Failure::Mismatch: return "wrong echo";
        case Failure::Io: return "i/o";
    }
    return "unknown";
}

// Samples are raw little-endian u64, whatever the machine's byte order.
bool write_samples(const std::string& path, const std::vector<std::uint64_t>& samples) {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (file == nullptr) return false;
    bool ok = true;
    if constexpr (std::endian::native == std::endian::little) {
        ok = std::fwrite(samples.data(), sizeof(std::uint64_t), samples.size(), file) == samples.size();
    } else {
        for (auto value : samples) {
            unsigned char bytes[8];
            for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
            ok = ok && std::fwrite(bytes, 1, sizeof bytes, file) == sizeof bytes;
        }
    }
    return std::fclose(file) == 0 && ok;
}
}  // namespace

void FailureLog::record(Failure kind, std::string_view detail) {
    auto& seen = seen_[static_cast<std::size_t>(kind)];
    if (!seen.exchange(true, std::memory_order_relaxed)) {
        std::fprintf(stderr, "%s: first %s failure: %.*s\n", program_.c_str(), failure_name(kind),
                     static_cast<int>(detail.size()), detail.data());
    }
}

void FailureLog::warmup_failed(std::uint64_t count) const {
    if (count > 0) {
        std::fprintf(stderr, "%s: warm-up: %llu requests failed\n", program_.c_str(),
                     static_cast<unsigned long long>(count));
    }
}

namespace {
CpuTime process_cpu_time() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    auto us = [](const timeval& tv) {
        return static_cast<std::uint64_t>(tv.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(tv.tv_usec);
    };
    return {us(usage.ru_utime), us(usage.ru_stime)};
}
}  // namespace

void MeasuredWindow::start() {
    std::fputs("MEASURING\n", stdout);
    std::fflush(stdout);
    start_ = process_cpu_time();
}

void MeasuredWindow::stop() {
    if (stopped_) return;
    stop_ = process_cpu_time();
    stopped_ = true;
}

CpuTime MeasuredWindow::cpu() const {
    return {stop_.user_us - start_.user_us, stop_.sys_us - start_.sys_us};
}

Failure failure_for_errno(int error) {
    switch (error) {
        case ECONNRESET:
        case EPIPE:
        case ECONNABORTED:
            return Failure::Reset;
        case ETIMEDOUT:
        case EAGAIN:
            return Failure::Timeout;
        case ECONNREFUSED:
        case ENETUNREACH:
        case EHOSTUNREACH:
        case EADDRNOTAVAIL:
        case EMFILE:
        case ENFILE:
            return Failure::Connect;
        default:
            return Failure::Io;
    }
}

void Tally::merge(Tally&& other) {
    ok += other.ok;
    failed += other.failed;
    bytes += other.bytes;
    conn_min = std::min(conn_min, other.conn_min);
    conn_max = std::max(conn_max, other.conn_max);
    if (samples.empty()) {
        samples = std::move(other.samples);
    } else {
        samples.insert(samples.end(), other.samples.begin(), other.samples.end());
    }
    other.samples.clear();
}

int finish_client(const ClientOptions& options, Tally& total, std::uint64_t wall_ns, CpuTime cpu,
                  std::string_view program) {
    int status = total.failed == 0 ? 0 : 1;
    if (options.samples_path && !write_samples(*options.samples_path, total.samples)) {
        std::fprintf(stderr, "%.*s: cannot write samples to '%s': %s\n", static_cast<int>(program.size()),
                     program.data(), options.samples_path->c_str(), error_text(errno).c_str());
        status = 1;
    }
    // No connection finished at all (nothing to take a minimum of): report 0.
    std::uint64_t conn_min =
        total.conn_min == std::numeric_limits<std::uint64_t>::max() ? 0 : total.conn_min;
    std::printf("RESULT ok=%llu failed=%llu wall_ns=%llu bytes=%llu conn_min=%llu conn_max=%llu "
                "cpu_user_us=%llu cpu_sys_us=%llu\n",
                static_cast<unsigned long long>(total.ok), static_cast<unsigned long long>(total.failed),
                static_cast<unsigned long long>(wall_ns), static_cast<unsigned long long>(total.bytes),
                static_cast<unsigned long long>(conn_min), static_cast<unsigned long long>(total.conn_max),
                static_cast<unsigned long long>(cpu.user_us), static_cast<unsigned long long>(cpu.sys_us));
    double sum = std::accumulate(total.samples.begin(), total.samples.end(), 0.0);
    double avg_us = total.samples.empty() ? 0.0 : sum / static_cast<double>(total.samples.size()) / 1e3;
    std::printf("C++: %u clients, total time = %.2f ms, avg = %.1f μs\n", options.connections,
                static_cast<double>(wall_ns) / 1e6, avg_us);
    std::fflush(stdout);
    return status;
}

}  // namespace echo
