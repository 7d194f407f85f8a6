// cpp-threads client: a thread per connection, each doing blocking connect, send and recv.
// Every thread is created first and parked on a gate, so the burst starts all at once.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <latch>
#include <limits>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "entry.hpp"
#include "payload.hpp"
#include "system.hpp"

namespace {

constexpr const char* kProgram = "cpp-threads-client";
constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

struct Error {
    echo::Failure kind;
    std::string detail;
};

Error errno_error(const char* during, int error) {
    return {echo::failure_for_errno(error), std::string(during) + ": " + echo::error_text(error)};
}

// One blocking connection: connect, then request/echo exchanges, each bounded by --timeout.
class BlockingConnection {
public:
    BlockingConnection(std::uint32_t index, const echo::ClientOptions& options)
        : index_(index),
          payload_size_(options.payload),
          timeout_ms_(static_cast<int>(std::min(options.timeout_s * 1000.0, 2e9))),
          out_(std::min<std::size_t>(options.payload, 64 * 1024)),
          in_(out_.size()) {}

    std::optional<Error> connect(const echo::Endpoint& server) {
        fd_.reset(::socket(server.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd_) return errno_error("socket", errno);
        // The kernel enforces --timeout on blocking connect, send and recv for us.
        timeval tv{static_cast<time_t>(timeout_ms_ / 1000), static_cast<suseconds_t>(timeout_ms_ % 1000) * 1000};
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        ::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        echo::set_no_delay(fd_.get());
        while (::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&server.address), server.length) != 0) {
            if (errno == EINTR) continue;
            // A blocking connect cut short by SO_SNDTIMEO reports EINPROGRESS.
            if (errno == EINPROGRESS || errno == EAGAIN) {
                return Error{echo::Failure::Timeout, "connect: no answer within --timeout"};
            }
            return Error{echo::Failure::Connect, "connect: " + echo::error_text(errno)};
        }
        return std::nullopt;
    }

    // Sends request `request` and reads its whole echo, verifying every byte.
    std::optional<Error> exchange(std::uint64_t request) {
        echo::Payload payload(index_, request);
        std::size_t sent = 0, received = 0;
        while (received < payload_size_) {
            if (sent < payload_size_) {
                // Never block in send while the echo piles up unread: with payloads larger
                // than the socket buffers both sides would wait on each other for ever.
                std::size_t chunk = std::min(out_.size(), payload_size_ - sent);
                payload.fill({out_.data(), chunk}, sent);
                ssize_t n = ::send(fd_.get(), out_.data(), chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n > 0) {
                    sent += static_cast<std::size_t>(n);
                    continue;
                }
                if (n < 0 && errno != EAGAIN && errno != EINTR) return errno_error("send", errno);
                pollfd wait{fd_.get(), POLLIN | POLLOUT, 0};
                int ready = ::poll(&wait, 1, timeout_ms_);
                if (ready == 0) return Error{echo::Failure::Timeout, "send: no progress within --timeout"};
                if (ready < 0 || !(wait.revents & POLLIN)) continue;
            }
            // Everything sent (or echo waiting): the classic blocking read.
            int flags = sent < payload_size_ ? MSG_DONTWAIT : 0;
            std::size_t want = std::min(in_.size(), payload_size_ - received);
            ssize_t n = ::recv(fd_.get(), in_.data(), want, flags);
            if (n == 0) return Error{echo::Failure::Closed, "server closed after " + std::to_string(received) +
                                                                " of " + std::to_string(payload_size_) + " bytes"};
            if (n < 0) {
                if (errno == EINTR || (flags != 0 && errno == EAGAIN)) continue;
                if (errno == EAGAIN) return Error{echo::Failure::Timeout, "recv: no echo within --timeout"};
                return errno_error("recv", errno);
            }
            if (!payload.matches({in_.data(), static_cast<std::size_t>(n)}, received)) {
                return Error{echo::Failure::Mismatch, "connection " + std::to_string(index_) + " request " +
                                                          std::to_string(request) + " near byte " +
                                                          std::to_string(received)};
            }
            received += static_cast<std::size_t>(n);
        }
        return std::nullopt;
    }

    void close() { fd_.reset(); }

private:
    std::uint32_t index_;
    std::size_t payload_size_;
    int timeout_ms_;
    echo::Fd fd_;
    std::vector<std::uint8_t> out_;
    std::vector<std::uint8_t> in_;
};

// What one connection's thread measured; merged by the main thread after joining.
struct ConnectionResult {
    echo::Tally tally;
    std::uint64_t first_ns = kNever;  // burst: connect start; persistent: first send
    std::uint64_t last_ns = 0;        // burst: close; persistent: last verified echo
};

// Where the main thread and every connection's thread meet. Main opens the go gates and
// reads the clock and the CPU in between; a thread that could not start is counted by main.
struct Gates {
    explicit Gates(std::ptrdiff_t threads) : ready(threads), warmed(threads), done(threads) {}
    void absent() {
        ready.count_down();
        warmed.count_down();
        done.count_down();
    }
    std::latch ready;       // parked (burst) or connected (persistent)
    std::latch go_warmup{1};
    std::latch warmed;      // persistent: warm-up window over
    std::latch go{1};       // the measured window starts
    std::latch done;        // the measured window is over for this connection
    std::latch close{1};    // the window's CPU is read: connections may close now
};

// One persistent window's clock, set by main before it opens the window's gate.
struct Window {
    std::uint64_t start = 0;
    std::uint64_t end = 0;
    void open(double seconds) {
        start = echo::now_ns();
        end = start + static_cast<std::uint64_t>(seconds * 1e9);
    }
};

// Starts one thread per connection; a connection whose thread cannot start is a failure.
template <typename Body>
std::vector<echo::StackThread> start_threads(std::uint32_t count, std::vector<ConnectionResult>& results,
                                             echo::FailureLog& failures, Gates& gates, Body body) {
    std::vector<echo::StackThread> threads;
    threads.reserve(count);
    for (std::uint32_t i = 0; i < count; ++i) {
        try {
            // body is copied into each thread: it must outlive this function's frame.
            threads.emplace_back([i, body] { body(i); }, echo::StackThread::kSmallStack);
        } catch (const std::system_error& error) {
            failures.record(echo::Failure::Io, std::string("cannot start a thread: ") + error.what());
            results[i].tally.failed += 1;
            results[i].tally.connection_finished(0);
            gates.absent();
        }
    }
    return threads;
}

echo::ClientRun collect(std::vector<echo::StackThread>& threads, std::vector<ConnectionResult>& results) {
    for (auto& thread : threads) thread.join();
    echo::ClientRun run;
    std::uint64_t first = kNever, last = 0;
    for (auto& result : results) {
        first = std::min(first, result.first_ns);
        last = std::max(last, result.last_ns);
        run.total.merge(std::move(result.tally));
    }
    run.wall_ns = last > first ? last - first : 0;
    return run;
}

// window: where MEASURING and the CPU readings go; none for the unrecorded warm-up burst.
echo::ClientRun run_burst(const echo::ClientOptions& options, const echo::Endpoint& server,
                          echo::FailureLog& failures, echo::MeasuredWindow* window) {
    std::vector<ConnectionResult> results(options.connections);
    Gates gates(options.connections);

    auto threads = start_threads(options.connections, results, failures, gates, [&](std::uint32_t i) {
        gates.ready.count_down();
        gates.go.wait();
        auto& result = results[i];
        BlockingConnection connection(i, options);
        result.first_ns = echo::now_ns();
        auto error = connection.connect(server);
        if (!error) error = connection.exchange(0);
        connection.close();
        result.last_ns = echo::now_ns();
        if (error) {
            failures.record(error->kind, error->detail);
            result.tally.failed += 1;
            result.tally.connection_finished(0);
        } else {
            result.tally.succeeded(result.last_ns - result.first_ns, options.payload);
            result.tally.connection_finished(1);
        }
        gates.done.count_down();
    });
    gates.ready.wait();  // every thread exists and waits
    if (window) window->start();
    gates.go.count_down();
    gates.done.wait();  // the last connection has closed
    if (window) window->stop();
    return collect(threads, results);
}

// One window of persistent load on one connection: requests from window.start until
// window.end, each recorded in result. Returns the error that ended the connection, if any.
std::optional<Error> load(BlockingConnection& connection, std::uint32_t i, const echo::ClientOptions& options,
                          const Window& window, ConnectionResult& result) {
    const std::uint32_t n = options.connections;
    const bool open_loop = options.rate > 0;
    for (std::uint64_t k = 0;; ++k) {
        std::uint64_t send_ns;
        if (open_loop) {
            // Request k of connection i is due at start + (i + k*N)/R; a late one goes now,
            // but its latency still counts from when it was due.
            double offset_s = (static_cast<double>(i) + static_cast<double>(k) * n) / options.rate;
            send_ns = window.start + static_cast<std::uint64_t>(offset_s * 1e9);
            if (send_ns >= window.end) return std::nullopt;
            timespec due{static_cast<time_t>(send_ns / 1'000'000'000u), static_cast<long>(send_ns % 1'000'000'000u)};
            while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, nullptr) == EINTR) {
            }
        } else {
            send_ns = echo::now_ns();
            if (send_ns >= window.end) return std::nullopt;
        }
        result.first_ns = std::min(result.first_ns, std::max(send_ns, echo::now_ns()));
        if (auto error = connection.exchange(k)) return error;
        std::uint64_t done = echo::now_ns();
        result.tally.succeeded(done - send_ns, options.payload);
        result.last_ns = done;
    }
}

echo::ClientRun run_persistent(const echo::ClientOptions& options, const echo::Endpoint& server,
                               echo::FailureLog& failures, echo::MeasuredWindow& measuring) {
    const std::uint32_t n = options.connections;
    std::vector<ConnectionResult> results(n);
    Gates gates(n);
    Window warmup, measured;
    const bool warm = options.warmup_s > 0;
    std::atomic<std::uint64_t> warmup_failed{0};

    auto threads = start_threads(n, results, failures, gates, [&](std::uint32_t i) {
        auto& result = results[i];
        BlockingConnection connection(i, options);
        auto error = connection.connect(server);
        gates.ready.count_down();
        if (warm) {
            // The same loop on the same connection, its counts dropped; a connection it
            // loses is failed in the measured window too, as that loop would find it.
            gates.go_warmup.wait();
            ConnectionResult dropped;
            if (!error && (error = load(connection, i, options, warmup, dropped))) {
                warmup_failed.fetch_add(1, std::memory_order_relaxed);
            }
            gates.warmed.count_down();
        }
        gates.go.wait();
        if (!error) error = load(connection, i, options, measured, result);
        gates.done.count_down();
        if (error) {
            failures.record(error->kind, error->detail);
            result.tally.failed += 1;
        }
        result.tally.connection_finished(result.tally.ok);
        gates.close.wait();
        connection.close();
    });
    gates.ready.wait();  // every connection is open (or failed to open); not timed
    if (warm) {
        warmup.open(options.warmup_s);
        gates.go_warmup.count_down();
        gates.warmed.wait();
    }
    measuring.start();
    measured.open(options.duration_s);
    gates.go.count_down();
    gates.done.wait();  // the last in-window echo is in
    measuring.stop();
    gates.close.count_down();
    failures.warmup_failed(warmup_failed.load());
    return collect(threads, results);
}

echo::ClientRun run(const echo::ClientOptions& options, const echo::Endpoint& server, echo::FailureLog& failures) {
    echo::MeasuredWindow window;
    echo::ClientRun result;
    if (options.workload == echo::Workload::Persistent) {
        result = run_persistent(options, server, failures, window);
    } else {
        if (options.warmup_s > 0) {
            // An unrecorded burst of a tenth of the connections first: the same code, warm.
            echo::ClientOptions warmup = options;
            warmup.connections = echo::warmup_burst_connections(options.connections);
            failures.warmup_failed(run_burst(warmup, server, failures, nullptr).total.failed);
        }
        result = run_burst(options, server, failures, &window);
    }
    result.cpu = window.cpu();
    return result;
}

}  // namespace

int main(int argc, char** argv) { return echo::run_client(argc, argv, kProgram, run); }
