// cpp-epoll server: one event loop per CPU the process may run on, each with its own
// edge-triggered epoll set of non-blocking connections and no locks. The loops share one
// listener, registered with EPOLLEXCLUSIVE so a new connection wakes one loop, not all.
// (SO_REUSEPORT listeners would spread connections too, but would also let a second server
// silently share a port that is in use instead of failing to bind.)
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

#include "entry.hpp"
#include "system.hpp"

namespace {

constexpr const char* kProgram = "cpp-epoll-server";

// Per read: large enough to move bulk payloads in few system calls.
constexpr std::size_t kReadBuffer = 64 * 1024;
// Reads one connection may do per turn before the others get theirs.
constexpr int kReadsPerTurn = 16;
// Accepts per wake-up; the listener is level-triggered, so the rest come next turn.
constexpr int kAcceptsPerTurn = 256;

std::atomic<bool> said_no_fds{false};

// One accepted connection. `pending` is the only per-connection buffer: the part of one
// read that the peer's window could not take yet. While it is non-empty the loop reads
// nothing more from this peer (back-pressure), so it never exceeds one read.
struct Connection {
    explicit Connection(int descriptor) : fd(descriptor) {}
    echo::Fd fd;
    std::vector<std::byte> pending;
    std::size_t pending_offset = 0;
    bool fin_queued = false;  // an EPOLLRDHUP was seen: the peer's FIN waits behind its data
};

class EventLoop {
public:
    explicit EventLoop(int listener)
        : epoll_(::epoll_create1(EPOLL_CLOEXEC)),
          wake_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
          listener_(listener),
          spare_fd_(::open("/dev/null", O_RDONLY | O_CLOEXEC)),
          buffer_(kReadBuffer) {
        if (!epoll_ || !wake_) throw std::system_error(errno, std::generic_category(), "epoll/eventfd");
        watch(wake_.get(), EPOLLIN);
        // Level-triggered, so a partial accept batch fires again; exclusive, so one loop wakes.
        watch(listener_, EPOLLIN | EPOLLEXCLUSIVE);
    }

    void run() {
        std::array<epoll_event, 512> events;
        while (!stopping_) {
            int timeout = again_.empty() ? -1 : 0;
            int count = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout);
            if (count < 0) {
                if (errno == EINTR) continue;
                std::perror("cpp-epoll-server: epoll_wait");
                return;
            }
            // Connections that used up their turn last time go first, then the new events.
            std::vector<int> again;
            again.swap(again_);
            for (int fd : again) serve(fd, EPOLLIN);
            for (int i = 0; i < count; ++i) {
                int fd = events[i].data.fd;
                if (fd == listener_) {
                    accept_batch();
                } else if (fd == wake_.get()) {
                    stopping_ = true;
                } else {
                    serve(fd, events[i].events);
                }
            }
        }
    }

    // Safe from any thread: the loop notices at its next wake-up.
    void stop() {
        std::uint64_t one = 1;
        [[maybe_unused]] auto written = ::write(wake_.get(), &one, sizeof one);
    }

private:
    void watch(int fd, std::uint32_t events) {
        epoll_event event{};
        event.events = events;
        event.data.fd = fd;
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
            throw std::system_error(errno, std::generic_category(), "epoll_ctl");
        }
    }

    void accept_batch() {
        for (int i = 0; i < kAcceptsPerTurn; ++i) {
            int fd = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EMFILE || errno == ENFILE) shed_one_connection();
                return;  // EAGAIN: queue empty; anything else: try again next wake-up
            }
            epoll_event event{};
            // Registered once for both directions, edge-triggered: no epoll_ctl per request.
            // An EPOLLOUT edge with nothing pending costs a wake-up entry, not a system call.
            // EPOLLRDHUP tells a FIN apart from data (see serve()).
            event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
            event.data.fd = fd;
            if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
                ::close(fd);
                continue;
            }
            if (static_cast<std::size_t>(fd) >= connections_.size()) connections_.resize(fd + 1024);
            connections_[fd] = std::make_unique<Connection>(fd);
        }
    }

    // Out of descriptors, a level-triggered listener would wake us for ever. Give back the
    // spare descriptor, accept the connection and close it at once, then take the spare again:
    // the peer sees a clean close instead of a hang, and the loop stays responsive.
    void shed_one_connection() {
        if (!said_no_fds.exchange(true)) {
            std::fprintf(stderr, "%s: out of file descriptors; closing new connections until some end\n",
                         kProgram);
        }
        spare_fd_.reset();
        echo::Fd shed(::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC));
        shed.reset();
        spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    }

    void close_connection(int fd) { connections_[fd].reset(); }  // close() also leaves epoll

    // Returns false when the connection is gone (error) and was closed.
    bool flush(Connection& connection) {
        while (connection.pending_offset < connection.pending.size()) {
            ssize_t sent = ::send(connection.fd.get(), connection.pending.data() + connection.pending_offset,
                                  connection.pending.size() - connection.pending_offset,
                                  MSG_NOSIGNAL | MSG_DONTWAIT);
            if (sent < 0) {
                if (errno == EINTR) continue;
                return errno == EAGAIN;
            }
            connection.pending_offset += static_cast<std::size_t>(sent);
        }
        // Give the memory back: a peer that was slow once should not keep 64 KiB for ever.
        std::vector<std::byte>().swap(connection.pending);
        connection.pending_offset = 0;
        return true;
    }

    void serve(int fd, std::uint32_t events) {
        if (fd < 0 || static_cast<std::size_t>(fd) >= connections_.size() || !connections_[fd]) return;
        Connection& connection = *connections_[fd];
        // Remembered, not just tested: the event that carried it may be consumed while this
        // connection is throttled or waits in again_.
        if (events & EPOLLRDHUP) connection.fin_queued = true;

        if (!connection.pending.empty()) {
            // Throttled: only a drained backlog lets us read again (the EPOLLIN edge that came
            // meanwhile was consumed, so reading now is required, not optional).
            if (!flush(connection)) return close_connection(fd);
            if (!connection.pending.empty()) return;
        } else if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))) {
            return;  // a write-space edge with nothing to write
        }

        for (int turn = 0; turn < kReadsPerTurn; ++turn) {
            ssize_t received = ::recv(fd, buffer_.data(), buffer_.size(), 0);
            if (received == 0) return close_connection(fd);  // everything it sent was echoed
            if (received < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) return;  // drained; the next edge brings more
                return close_connection(fd);  // reset mid-echo and the like
            }
            auto size = static_cast<std::size_t>(received);
            ssize_t sent = ::send(fd, buffer_.data(), size, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (sent < 0) {
                if (errno != EAGAIN) return close_connection(fd);
                sent = 0;
            }
            if (static_cast<std::size_t>(sent) < size) {
                // The peer reads slower than it writes: keep the rest, stop reading, and let
                // the EPOLLOUT edge resume us when its window opens.
                connection.pending.assign(buffer_.begin() + sent, buffer_.begin() + received);
                connection.pending_offset = 0;
                return;
            }
            // A short read emptied the receive queue: anything arriving later raises a new
            // edge, so the recv() that would only say EAGAIN is skipped (one system call of
            // about eight per burst connection). Not when a FIN is known to be queued: it
            // sits behind the data and raises no new edge, so read on to see the EOF.
            if (size < buffer_.size() && !connection.fin_queued) return;
        }
        again_.push_back(fd);  // turn used up with data possibly left; no edge will say so
    }

    echo::Fd epoll_;
    echo::Fd wake_;
    int listener_;  // owned by EpollServer, shared by every loop
    echo::Fd spare_fd_;
    std::vector<std::byte> buffer_;
    std::vector<std::unique_ptr<Connection>> connections_;  // by descriptor
    std::vector<int> again_;
    bool stopping_ = false;
};

class EpollServer {
public:
    explicit EpollServer(const echo::Endpoint& endpoint)
        : listener_(echo::listen_tcp(endpoint, /*non_blocking=*/true)) {
        unsigned count = echo::allowed_cpu_count();
        for (unsigned i = 0; i < count; ++i) loops_.push_back(std::make_unique<EventLoop>(listener_.get()));
        for (auto& loop : loops_) threads_.emplace_back([&loop] { loop->run(); });
    }

    echo::Endpoint bound() const { return echo::local_endpoint(listener_.get()); }

    void stop() {
        for (auto& loop : loops_) loop->stop();
        threads_.clear();  // joins
    }

private:
    echo::Fd listener_;
    std::vector<std::unique_ptr<EventLoop>> loops_;
    std::vector<std::jthread> threads_;
};

}  // namespace

int main(int argc, char** argv) {
    std::unique_ptr<EpollServer> server;
    return echo::serve(argc, argv, kProgram, [&](const echo::Endpoint& endpoint) {
        server = std::make_unique<EpollServer>(endpoint);
        return echo::RunningServer{server->bound(), [&] { server->stop(); }};
    });
}
