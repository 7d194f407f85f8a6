// Sockets: an owning descriptor, addresses, and the listener every server opens the same way.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <utility>

namespace echo {

// Owns one file descriptor; closes it exactly once.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    int release() { return std::exchange(fd_, -1); }
    void reset(int fd = -1);

private:
    int fd_ = -1;
};

struct Endpoint {
    sockaddr_storage address{};
    socklen_t length = 0;

    int family() const { return address.ss_family; }
    // "127.0.0.1:40123" or "[::1]:40123", as the ready line wants it.
    std::string to_string() const;
};

// Resolves a numeric or named host; throws std::runtime_error with a readable reason.
Endpoint resolve(const std::string& host, std::uint16_t port);

// The address a bound socket really has (the kernel's port when 0 was asked for).
Endpoint local_endpoint(int fd);

// Opens a listening TCP socket whose accepted sockets have TCP_NODELAY already set.
// Throws std::system_error naming what failed (port in use...).
Fd listen_tcp(const Endpoint& endpoint, bool non_blocking);

// Latency, not throughput, is measured: never let Nagle hold back a small echo.
void set_no_delay(int fd);

// The description of an errno for stderr, e.g. "Connection refused".
std::string error_text(int error);

}  // namespace echo
