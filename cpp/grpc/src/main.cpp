// cpp-grpc-server: bench.Echo, bench.Crypto and grpc.health.v1.Health over h2c with gRPC C++.
// The process lifecycle of the contract (docs/contract.md "Servers"): arguments (exit 2),
// keys, bind (exit 1 with the reason), the READY line, SIGTERM/SIGINT -> exit 0 within 1 s.
#include <grpc/grpc.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "crypto.hpp"
#include "options.hpp"
#include "servers.hpp"
#include "system.hpp"  // cpp/common

namespace {

constexpr const char* kProgram = "cpp-grpc-server";

// After SIGTERM: calls still running this long are cancelled (the contract allows 1 s in all).
constexpr auto kShutdownGrace = std::chrono::milliseconds(250);
// If the orderly shutdown has not finished by then, the process exits anyway.
constexpr auto kShutdownLimit = std::chrono::milliseconds(900);

sigset_t termination_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    return set;
}

// "host:port" as gRPC and the READY line write it: an IPv6 literal goes in brackets.
std::string host_port(const std::string& host, int port) {
    bool v6 = host.find(':') != std::string::npos && !host.starts_with("[");
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// gRPC only says that BuildAndStart failed (and logs its own line); the reason comes from
// trying the same bind ourselves.
std::string tcp_bind_error(const std::string& host, std::uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    addrinfo* found = nullptr;
    auto service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
        return std::string("cannot resolve host: ") + ::gai_strerror(rc);
    }
    std::string reason = "gRPC could not bind it (see its log line above)";
    for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            reason = std::strerror(errno);
            break;
        }
        int on = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        bool bound = ::bind(fd, a->ai_addr, a->ai_addrlen) == 0;
        int error = errno;
        ::close(fd);
        if (!bound) {
            reason = std::strerror(error);
            break;
        }
    }
    ::freeaddrinfo(found);
    return reason;
}

// A Unix socket path is ours to bind when nothing is there, or when a socket file is there
// that nobody answers on (left by a killed server): that one is removed. A live socket or
// anything that is not a socket is left alone and reported. Returns "" when ready to bind.
std::string prepare_unix_path(const std::string& path) {
    sockaddr_un address{};
    if (path.size() >= sizeof address.sun_path) {
        return "path is " + std::to_string(path.size()) + " bytes, longer than a Unix socket address allows (" +
               std::to_string(sizeof address.sun_path - 1) + ")";
    }
    struct stat info{};
    if (::lstat(path.c_str(), &info) != 0) {
        return errno == ENOENT ? "" : std::strerror(errno);
    }
    if (!S_ISSOCK(info.st_mode)) return "the path exists and is not a socket";
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::strerror(errno);
    bool live = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    int error = errno;
    ::close(fd);
    if (live) return "Address already in use (a server answers on that socket)";
    if (error != ECONNREFUSED) return std::strerror(error);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return std::string("cannot remove stale socket: ") + std::strerror(errno);
    return "";
}

}  // namespace

int main(int argc, char** argv) {
    // Before any thread exists (gRPC starts its own), so every thread inherits the mask and
    // SIGTERM/SIGINT reach nobody but the sigwait below: no handler, nothing async-unsafe.
    sigset_t signals = termination_signals();
    ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    std::optional<grpcbench::ServerOptions> options;
    try {
        options = grpcbench::parse_server_options(argc, argv);
    } catch (const grpcbench::UsageError& error) {
        std::cerr << kProgram << ": " << error.what() << "\n";
        return 2;
    }
    if (!options) return 0;  // --help

    std::unique_ptr<grpcbench::Signer> signer;
    try {
        signer = std::make_unique<grpcbench::Signer>();
    } catch (const std::exception& error) {
        std::cerr << kProgram << ": cannot make the signing keys: " << error.what() << "\n";
        return 1;
    }

    const unsigned threads = options->threads != 0 ? options->threads : echo::allowed_cpu_count();
    auto bench = options->api == grpcbench::Api::Async ? grpcbench::make_async_server(*signer, threads)
                                                       : grpcbench::make_callback_server(*signer);

    std::string address;
    std::string shown;  // the READY line's address
    if (options->unix_path) {
        if (auto problem = prepare_unix_path(*options->unix_path); !problem.empty()) {
            std::cerr << kProgram << ": cannot listen on unix " << *options->unix_path << ": " << problem << "\n";
            return 1;
        }
        address = "unix:" + *options->unix_path;
    } else {
        address = host_port(options->host, options->port);
    }

    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    int selected_port = 0;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &selected_port);
    builder.SetMaxReceiveMessageSize(static_cast<int>(options->max_message_bytes));
    builder.SetMaxSendMessageSize(static_cast<int>(options->max_message_bytes));
    // gRPC sets SO_REUSEPORT by default, which would let a second server share a port that is
    // in use instead of failing to bind.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    bench->configure(builder);

    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (!server || selected_port == 0) {
        if (options->unix_path) {
            std::cerr << kProgram << ": cannot listen on unix " << *options->unix_path
                      << ": gRPC could not bind it (see its log line above)\n";
        } else {
            std::cerr << kProgram << ": cannot listen on " << address << ": "
                      << tcp_bind_error(options->host, options->port) << "\n";
        }
        return 1;
    }

    // The default service answers "" SERVING by itself; say it, and name every service.
    auto* health = server->GetHealthCheckService();
    health->SetServingStatus("", true);
    for (const char* service : {"bench.Echo", "bench.Crypto"}) health->SetServingStatus(service, true);

    bench->start();
    if (options->unix_path) {
        std::printf("READY unix %s\n", options->unix_path->c_str());
    } else {
        std::printf("READY tcp %s\n", host_port(options->host, selected_port).c_str());
    }
    std::fflush(stdout);

    int signal = 0;
    while (::sigwait(&signals, &signal) != 0) {
    }

    std::thread([] {
        std::this_thread::sleep_for(kShutdownLimit);
        std::fprintf(stderr, "%s: shutdown took longer than %lld ms; exiting anyway\n", kProgram,
                     static_cast<long long>(kShutdownLimit.count()));
        std::_Exit(0);
    }).detach();

    bench->begin_stop();
    server->Shutdown(std::chrono::system_clock::now() + kShutdownGrace);
    bench->stop();
    server.reset();
    if (options->unix_path) {
        struct stat info{};
        if (::lstat(options->unix_path->c_str(), &info) == 0 && S_ISSOCK(info.st_mode)) {
            ::unlink(options->unix_path->c_str());
        }
    }
    return 0;
}
