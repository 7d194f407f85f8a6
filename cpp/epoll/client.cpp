// cpp-epoll client: one edge-triggered epoll loop per CPU the process may run on, each
// driving its share of the connections as small state machines. No per-connection thread,
// stack or buffer: the payload is generated and verified on the fly from its pattern.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <barrier>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <limits>
#include <queue>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "entry.hpp"
#include "payload.hpp"
#include "system.hpp"

namespace {

constexpr const char* kProgram = "cpp-epoll-client";
constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();
constexpr std::size_t kIoBuffer = 64 * 1024;
// Connects started per loop turn: every connection still starts within a few milliseconds,
// but completions are handled in between instead of after ten thousand connect() calls.
constexpr std::size_t kConnectsPerTurn = 256;
// How often connections are checked against --timeout; a scan of 10k is microseconds.
constexpr std::uint64_t kTimeoutScanNs = 50'000'000;

enum class State { Idle, Connecting, Connected, Busy, Waiting, Finished };

struct Connection {
    std::uint32_t index = 0;  // global connection number c of the payload pattern
    State state = State::Idle;
    echo::Fd fd;
    std::uint64_t request = 0;   // k: requests completed so far, and the one in flight
    std::size_t sent = 0;
    std::size_t received = 0;
    std::uint64_t origin_ns = 0;  // latency is measured from here (intended time in open loop)
    std::uint64_t deadline_ns = kNever;
};

// Run-wide values every loop reads; t0 and end are written by the barrier while no loop runs.
struct Shared {
    const echo::ClientOptions& options;
    const echo::Endpoint& server;
    echo::FailureLog& failures;
    echo::MeasuredWindow& window;
    unsigned warmups = 0;  // windows to open, before the measured one, that record nothing
    std::uint64_t t0 = 0;
    std::uint64_t end = 0;
};

// Runs once each time every loop has arrived (connections open, or a warm-up over), before any
// of them goes on: opens the next window on a clock they all share.
struct OpenWindow {
    Shared* shared;
    void operator()() noexcept {
        double seconds = shared->options.duration_s;
        if (shared->warmups > 0) {
            --shared->warmups;
            seconds = shared->options.warmup_s;
        } else {
            shared->window.start();
        }
        shared->t0 = echo::now_ns();
        shared->end = shared->t0 + static_cast<std::uint64_t>(seconds * 1e9);
    }
};

class ClientLoop {
public:
    ClientLoop(Shared& shared, unsigned loop, unsigned loops)
        : shared_(shared),
          options_(shared.options),
          epoll_(::epoll_create1(EPOLL_CLOEXEC)),
          timeout_ns_(static_cast<std::uint64_t>(options_.timeout_s * 1e9)),
          out_(std::min(options_.payload, kIoBuffer)),
          in_(out_.size()) {
        if (!epoll_) throw std::system_error(errno, std::generic_category(), "epoll_create1");
        for (std::uint32_t c = loop; c < options_.connections; c += loops) connections_.emplace_back().index = c;
        tally_.samples.reserve(options_.workload == echo::Workload::Burst ? connections_.size() : 1 << 16);
    }

    // Burst: connect, one exchange, close, for every connection at once.
    void run_burst(std::barrier<OpenWindow>& window) {
        window.arrive_and_wait();
        drive([this](Connection& c) { begin_request(c, c.origin_ns); });
    }

    // Persistent: open everything (untimed), meet the other loops, warm up, then load for
    // --duration. The warm-up is the same load on the same connections; its counts are
    // dropped, but a connection it lost stays lost: the measured window counts it failed.
    void run_persistent(std::barrier<OpenWindow>& window) {
        drive([this](Connection& c) { idle(c); });
        if (options_.warmup_s > 0) {
            echo::Tally opening = std::exchange(tally_, {});  // connect failures, kept for RESULT
            std::size_t open_before = open_connections();
            window.arrive_and_wait();
            load();
            warmup_failed_ = tally_.failed;
            tally_ = std::move(opening);
            for (std::size_t lost = open_before - open_connections(); lost > 0; --lost) {
                tally_.failed += 1;
                tally_.connection_finished(0);
            }
        }
        window.arrive_and_wait();
        load();
    }

    echo::Tally& tally() { return tally_; }
    std::uint64_t warmup_failed() const { return warmup_failed_; }
    std::uint64_t first_ns() const { return first_ns_; }
    std::uint64_t last_ns() const { return last_ns_; }

private:
    // One window of load on every open connection, until shared_.end.
    void load() {
        first_ns_ = kNever;
        last_ns_ = 0;
        const bool open_loop = options_.rate > 0;
        for (auto& c : connections_) {
            if (c.state != State::Connected) continue;
            c.request = 0;  // each window runs its own schedule from its own t0
            ++active_;
            if (open_loop) {
                schedule(c, intended_send(c.index, 0));
            } else {
                begin_request(c, echo::now_ns());
            }
        }
        drive(nullptr);
    }

    std::size_t open_connections() const {
        return static_cast<std::size_t>(std::count_if(connections_.begin(), connections_.end(),
                                                      [](const Connection& c) { return c.state == State::Connected; }));
    }

    // The event loop. on_connected decides what a fresh connection does; with none, no new
    // connections are started and the loop only serves the ones already open.
    void drive(std::function<void(Connection&)> on_connected) {
        on_connected_ = std::move(on_connected);
        std::size_t next_to_start = on_connected_ ? 0 : connections_.size();
        if (on_connected_) active_ += connections_.size();
        std::array<epoll_event, 1024> events;
        std::uint64_t next_scan = echo::now_ns() + kTimeoutScanNs;

        while (active_ > 0) {
            for (std::size_t n = 0; n < kConnectsPerTurn && next_to_start < connections_.size(); ++n) {
                start_connect(connections_[next_to_start++]);
            }
            std::uint64_t now = echo::now_ns();
            std::uint64_t wake = next_scan;
            if (next_to_start < connections_.size()) wake = now;
            if (!due_.empty()) wake = std::min(wake, due_.top().first);
            timespec timeout{};
            if (wake > now) {
                timeout.tv_sec = static_cast<time_t>((wake - now) / 1'000'000'000u);
                timeout.tv_nsec = static_cast<long>((wake - now) % 1'000'000'000u);
            }
            // epoll_pwait2 takes nanoseconds: open-loop send times need better than 1 ms.
            int count = ::epoll_pwait2(epoll_.get(), events.data(), static_cast<int>(events.size()),
                                       &timeout, nullptr);
            if (count < 0 && errno != EINTR) throw std::system_error(errno, std::generic_category(), "epoll_pwait2");
            for (int i = 0; i < count; ++i) handle(connections_[events[i].data.u32], events[i].events);

            now = echo::now_ns();
            while (!due_.empty() && due_.top().first <= now) {
                auto [when, slot] = due_.top();
                due_.pop();
                begin_request(connections_[slot], when);
            }
            if (now >= next_scan) {
                expire(now);
                next_scan = now + kTimeoutScanNs;
            }
        }
    }

    void start_connect(Connection& c) {
        const auto& server = shared_.server;
        c.origin_ns = echo::now_ns();  // burst latency runs from the start of the connect
        first_ns_ = std::min(first_ns_, c.origin_ns);
        c.fd.reset(::socket(server.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!c.fd) return fail(c, echo::Failure::Connect, "socket: " + echo::error_text(errno));
        echo::set_no_delay(c.fd.get());
        if (::connect(c.fd.get(), reinterpret_cast<const sockaddr*>(&server.address), server.length) != 0 &&
            errno != EINPROGRESS) {
            return fail(c, echo::Failure::Connect, "connect: " + echo::error_text(errno));
        }
        epoll_event event{};
        // Both directions, edge-triggered, registered once: EPOLLOUT reports the connect,
        // then the room to send; EPOLLIN the echo. No epoll_ctl per request.
        event.events = EPOLLIN | EPOLLOUT | EPOLLET;
        event.data.u32 = static_cast<std::uint32_t>(&c - connections_.data());
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.fd.get(), &event) != 0) {
            return fail(c, echo::Failure::Io, "epoll_ctl: " + echo::error_text(errno));
        }
        c.state = State::Connecting;
        c.deadline_ns = c.origin_ns + timeout_ns_;
    }

    void handle(Connection& c, std::uint32_t events) {
        if (c.state == State::Connecting) {
            if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
            // Writable without an error flag is a completed connect; only a failure needs
            // the getsockopt that says why.
            if (events & (EPOLLERR | EPOLLHUP)) {
                int error = 0;
                socklen_t length = sizeof error;
                ::getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
                return fail(c, echo::Failure::Connect,
                            "connect: " + echo::error_text(error != 0 ? error : ECONNREFUSED));
            }
            return on_connected_(c);
        }
        if (c.state != State::Busy) {
            // An idle connection the server closed or reset is detected at its next request.
            return;
        }
        if (c.sent < options_.payload && (events & EPOLLOUT)) {
            if (!pump_send(c)) return;
        }
        if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) pump_receive(c);
    }

    // Sends what the socket takes now; the rest goes on the next EPOLLOUT edge.
    bool pump_send(Connection& c) {
        echo::Payload payload(c.index, c.request);
        while (c.sent < options_.payload) {
            std::size_t chunk = std::min(out_.size(), options_.payload - c.sent);
            payload.fill({out_.data(), chunk}, c.sent);
            ssize_t n = ::send(c.fd.get(), out_.data(), chunk, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return true;
                fail(c, echo::failure_for_errno(errno), "send: " + echo::error_text(errno));
                return false;
            }
            c.sent += static_cast<std::size_t>(n);
            c.deadline_ns = echo::now_ns() + timeout_ns_;
        }
        return true;
    }

    // Reads and verifies until the socket is drained or the whole echo is in.
    void pump_receive(Connection& c) {
        echo::Payload payload(c.index, c.request);
        while (c.received < options_.payload) {
            std::size_t want = std::min(in_.size(), options_.payload - c.received);
            ssize_t n = ::recv(c.fd.get(), in_.data(), want, 0);
            if (n == 0) {
                return fail(c, echo::Failure::Closed, "server closed after " + std::to_string(c.received) +
                                                          " of " + std::to_string(options_.payload) + " bytes");
            }
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return;
                return fail(c, echo::failure_for_errno(errno), "recv: " + echo::error_text(errno));
            }
            if (!payload.matches({in_.data(), static_cast<std::size_t>(n)}, c.received)) {
                return fail(c, echo::Failure::Mismatch,
                            "connection " + std::to_string(c.index) + " request " + std::to_string(c.request) +
                                " near byte " + std::to_string(c.received));
            }
            c.received += static_cast<std::size_t>(n);
            c.deadline_ns = echo::now_ns() + timeout_ns_;
        }
        complete(c);
    }

    void complete(Connection& c) {
        std::uint64_t now = echo::now_ns();
        tally_.succeeded(now - c.origin_ns, options_.payload);
        last_ns_ = std::max(last_ns_, now);
        ++c.request;
        if (options_.workload == echo::Workload::Burst) return finish(c);
        if (options_.rate > 0) return schedule(c, intended_send(c.index, c.request));
        if (now >= shared_.end) return rest(c);
        begin_request(c, now);
    }

    // Open loop: connection i's request k is due at t0 + (i + k*N)/R.
    std::uint64_t intended_send(std::uint32_t index, std::uint64_t request) const {
        double offset_s = (static_cast<double>(index) + static_cast<double>(request) * options_.connections) /
                          options_.rate;
        return shared_.t0 + static_cast<std::uint64_t>(offset_s * 1e9);
    }

    void schedule(Connection& c, std::uint64_t due) {
        if (due >= shared_.end) return rest(c);
        if (due <= echo::now_ns()) return begin_request(c, due);  // late: go now, latency from due
        c.state = State::Waiting;
        c.deadline_ns = kNever;
        due_.emplace(due, static_cast<std::uint32_t>(&c - connections_.data()));
    }

    void begin_request(Connection& c, std::uint64_t origin) {
        if (options_.workload == echo::Workload::Persistent) {
            first_ns_ = std::min(first_ns_, echo::now_ns());
        }
        c.state = State::Busy;
        c.origin_ns = origin;
        c.sent = 0;
        c.received = 0;
        c.deadline_ns = echo::now_ns() + timeout_ns_;
        // Send at once: the socket almost always has room. The echo cannot be back yet, so
        // no recv here; its EPOLLIN edge will come.
        pump_send(c);
    }

    void expire(std::uint64_t now) {
        for (auto& c : connections_) {
            if ((c.state == State::Connecting || c.state == State::Busy) && c.deadline_ns <= now) {
                fail(c, echo::Failure::Timeout,
                     c.state == State::Connecting ? "connect: no answer within --timeout"
                                                  : "no progress within --timeout");
            }
        }
    }

    void fail(Connection& c, echo::Failure kind, const std::string& detail) {
        shared_.failures.record(kind, detail);
        tally_.failed += 1;
        finish(c);
    }

    // Persistent: open and idle until the next window (or the end of the run).
    void idle(Connection& c) {
        c.state = State::Connected;
        c.deadline_ns = kNever;
        --active_;
    }

    // Persistent: this connection's part of the window is over; it stays open.
    void rest(Connection& c) {
        tally_.connection_finished(c.request);
        idle(c);
    }

    void finish(Connection& c) {
        c.fd.reset();  // closing also removes it from the epoll set
        c.state = State::Finished;
        c.deadline_ns = kNever;
        tally_.connection_finished(c.request);
        if (options_.workload == echo::Workload::Burst) last_ns_ = std::max(last_ns_, echo::now_ns());
        --active_;
    }

    Shared& shared_;
    const echo::ClientOptions& options_;
    echo::Fd epoll_;
    std::uint64_t timeout_ns_;
    std::vector<std::uint8_t> out_;
    std::vector<std::uint8_t> in_;
    std::vector<Connection> connections_;  // never resized after construction: epoll holds indices
    std::function<void(Connection&)> on_connected_;
    // Open loop: (due time, connection slot), earliest first.
    std::priority_queue<std::pair<std::uint64_t, std::uint32_t>, std::vector<std::pair<std::uint64_t, std::uint32_t>>,
                        std::greater<>>
        due_;
    std::size_t active_ = 0;
    echo::Tally tally_;
    std::uint64_t warmup_failed_ = 0;
    std::uint64_t first_ns_ = kNever;
    std::uint64_t last_ns_ = 0;
};

// One run of the workload on fresh loops, one thread each; the window covers its measured part.
echo::ClientRun run_loops(const echo::ClientOptions& options, const echo::Endpoint& server,
                          echo::FailureLog& failures, echo::MeasuredWindow& window, unsigned warmups) {
    unsigned loop_count = std::min<unsigned>(echo::allowed_cpu_count(), options.connections);
    Shared shared{options, server, failures, window, warmups};
    std::vector<std::unique_ptr<ClientLoop>> loops;
    for (unsigned i = 0; i < loop_count; ++i) loops.push_back(std::make_unique<ClientLoop>(shared, i, loop_count));

    std::barrier<OpenWindow> barrier(loop_count, OpenWindow{&shared});
    {
        std::vector<std::jthread> threads;
        for (auto& loop : loops) {
            threads.emplace_back([&loop, &options, &barrier] {
                if (options.workload == echo::Workload::Burst) {
                    loop->run_burst(barrier);
                } else {
                    loop->run_persistent(barrier);
                }
            });
        }
    }  // joined: the last echo is in (persistent connections are still open)
    window.stop();

    echo::ClientRun result;
    std::uint64_t first = kNever, last = 0, warmup_failed = 0;
    for (auto& loop : loops) {
        first = std::min(first, loop->first_ns());
        last = std::max(last, loop->last_ns());
        warmup_failed += loop->warmup_failed();
        result.total.merge(std::move(loop->tally()));
    }
    failures.warmup_failed(warmup_failed);
    result.wall_ns = last > first ? last - first : 0;
    result.cpu = window.cpu();
    return result;
}

echo::ClientRun run(const echo::ClientOptions& options, const echo::Endpoint& server, echo::FailureLog& failures) {
    echo::MeasuredWindow window;
    if (options.workload == echo::Workload::Burst && options.warmup_s > 0) {
        // An unrecorded burst of a tenth of the connections first: the same code, warm. Its
        // one window is a warm-up, so it prints no MEASURING.
        echo::ClientOptions warmup = options;
        warmup.connections = echo::warmup_burst_connections(options.connections);
        echo::MeasuredWindow discarded;
        failures.warmup_failed(run_loops(warmup, server, failures, discarded, 1).total.failed);
    }
    const bool persistent_warmup = options.workload == echo::Workload::Persistent && options.warmup_s > 0;
    return run_loops(options, server, failures, window, persistent_warmup ? 1 : 0);
}

}  // namespace

int main(int argc, char** argv) { return echo::run_client(argc, argv, kProgram, run); }
