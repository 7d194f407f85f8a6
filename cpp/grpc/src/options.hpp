// cpp-grpc-server's command line: the contract's server arguments (docs/contract.md) plus the
// few knobs of this server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "args.hpp"  // cpp/common

namespace grpcbench {

// Thrown for arguments the contract does not allow; main turns it into one line + exit 2.
using echo::UsageError;

// Which gRPC C++ server API serves the bench services (see README "Design").
enum class Api { Async, Callback };

struct ServerOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::optional<std::string> unix_path;  // --unix: listen on this Unix socket instead of TCP
    Api api = Api::Async;
    unsigned threads = 0;  // completion-queue threads; 0 = one per CPU in the affinity mask
    std::size_t max_message_bytes = std::size_t{4} << 20;
};

// std::nullopt when --help was asked for (the usage is already on stdout).
std::optional<ServerOptions> parse_server_options(int argc, char** argv);

std::string server_usage(std::string_view program);

}  // namespace grpcbench
