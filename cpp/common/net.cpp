#include "net.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

namespace echo {

void Fd::reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

std::string Endpoint::to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    std::string result;
    if (family() == AF_INET6) {
        const auto& in6 = reinterpret_cast<const sockaddr_in6&>(address);
        ::inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
        result.append("[").append(text).append("]:").append(std::to_string(ntohs(in6.sin6_port)));
    } else {
        const auto& in4 = reinterpret_cast<const sockaddr_in&>(address);
        ::inet_ntop(AF_INET, &in4.sin_addr, text, sizeof text);
        result.append(text).append(":").append(std::to_string(ntohs(in4.sin_port)));
    }
    return result;
}

Endpoint resolve(const std::string& host, std::uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    auto service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
        throw std::runtime_error("cannot resolve host '" + host + "': " + ::gai_strerror(rc));
    }
    Endpoint endpoint;
    std::memcpy(&endpoint.address, found->ai_addr, found->ai_addrlen);
    endpoint.length = found->ai_addrlen;
    ::freeaddrinfo(found);
    return endpoint;
}

Endpoint local_endpoint(int fd) {
    Endpoint endpoint;
    endpoint.length = sizeof endpoint.address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&endpoint.address), &endpoint.length) != 0) {
        throw std::system_error(errno, std::generic_category(), "getsockname");
    }
    return endpoint;
}

Fd listen_tcp(const Endpoint& endpoint, bool non_blocking) {
    int type = SOCK_STREAM | SOCK_CLOEXEC | (non_blocking ? SOCK_NONBLOCK : 0);
    Fd fd(::socket(endpoint.family(), type, 0));
    if (!fd) throw std::system_error(errno, std::generic_category(), "socket");

    int on = 1;
    // A restarted server must not wait out TIME_WAIT connections of the previous run.
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&endpoint.address), endpoint.length) != 0) {
        throw std::system_error(errno, std::generic_category(), "bind " + endpoint.to_string());
    }
    // Linux accepted sockets inherit TCP_NODELAY from their listener: one setsockopt here
    // instead of one per connection.
    set_no_delay(fd.get());
    // A 10k burst arrives faster than any accept loop drains it; ask for the most the kernel
    // allows (it clamps to net.core.somaxconn) so fewer SYNs are dropped into the 1 s retry.
    constexpr int kBacklog = 65535;
    if (::listen(fd.get(), kBacklog) != 0) {
        throw std::system_error(errno, std::generic_category(), "listen " + endpoint.to_string());
    }
    return fd;
}

void set_no_delay(int fd) {
    int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

std::string error_text(int error) { return std::error_code(error, std::generic_category()).message(); }

}  // namespace echo
