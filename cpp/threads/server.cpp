// cpp-threads server: the classic design. One blocking accept loop; every accepted
// connection gets its own thread doing blocking read() then write() until the peer closes.
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <memory>
#include <system_error>
#include <thread>

#include "entry.hpp"
#include "system.hpp"

namespace {

constexpr const char* kProgram = "cpp-threads-server";

void warn_once(std::atomic<bool>& said, const char* what, int error) {
    if (!said.exchange(true)) {
        std::fprintf(stderr, "%s: %s: %s (further ones not shown)\n", kProgram, what,
                     echo::error_text(error).c_str());
    }
}

bool send_all(int fd, const std::byte* data, std::size_t size) {
    while (size > 0) {
        // A blocking send is the back-pressure: a peer that does not read stops this thread,
        // and a stopped thread reads nothing more.
        ssize_t sent = ::send(fd, data, size, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data += sent;
        size -= static_cast<std::size_t>(sent);
    }
    return true;
}

void echo_connection(echo::Fd connection) {
    // 16 KiB on a 64 KiB stack: enough to move bulk data in few system calls, small enough
    // that ten thousand threads stay cheap.
    std::array<std::byte, 16 * 1024> buffer;
    for (;;) {
        ssize_t received = ::recv(connection.get(), buffer.data(), buffer.size(), 0);
        if (received == 0) return;  // peer closed or half-closed; all it sent is echoed
        if (received < 0) {
            if (errno == EINTR) continue;
            return;  // reset or similar: nothing left to echo to
        }
        if (!send_all(connection.get(), buffer.data(), static_cast<std::size_t>(received))) return;
    }
}

class ThreadPerConnectionServer {
public:
    explicit ThreadPerConnectionServer(const echo::Endpoint& endpoint)
        : listener_(echo::listen_tcp(endpoint, /*non_blocking=*/false)),
          acceptor_([this] { accept_loop(); }, echo::StackThread::kSmallStack) {}

    echo::Endpoint bound() const { return echo::local_endpoint(listener_.get()); }

    // Wakes the blocked accept() and waits for the loop to end. Connection threads are
    // detached: process exit closes their sockets, which is all a stopping echo server owes.
    void stop() {
        stopping_ = true;
        ::shutdown(listener_.get(), SHUT_RDWR);
        acceptor_.join();
    }

private:
    void accept_loop() {
        while (!stopping_) {
            int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) {
                if (stopping_) return;
                int error = errno;
                if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM) {
                    // Out of descriptors: the queue waits in the kernel until some close.
                    warn_once(said_no_fds_, "accept", error);
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
                }
                continue;  // ECONNABORTED, EINTR, EPROTO...: the next one may be fine
            }
            echo::Fd connection(fd);  // TCP_NODELAY inherited from the listener
            try {
                echo::StackThread([c = std::make_shared<echo::Fd>(std::move(connection))]() mutable {
                    echo_connection(std::move(*c));
                }, echo::StackThread::kSmallStack).detach();
            } catch (const std::system_error& error) {
                // No thread for it: refuse this one (its Fd closes) rather than die.
                warn_once(said_no_threads_, "cannot start a connection thread", error.code().value());
            }
        }
    }

    echo::Fd listener_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> said_no_fds_{false};
    std::atomic<bool> said_no_threads_{false};
    echo::StackThread acceptor_;  // last: starts once everything it uses exists
};

}  // namespace

int main(int argc, char** argv) {
    std::unique_ptr<ThreadPerConnectionServer> server;
    return echo::serve(argc, argv, kProgram, [&](const echo::Endpoint& endpoint) {
        server = std::make_unique<ThreadPerConnectionServer>(endpoint);
        return echo::RunningServer{server->bound(), [&] { server->stop(); }};
    });
}
