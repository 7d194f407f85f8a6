// Command-line arguments of the implementation contract (docs/contract.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "args.hpp"

namespace echo {

struct ServerOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
};

enum class Workload { Burst, Persistent };

struct ClientOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::uint32_t connections = 10000;
    std::size_t payload = 100;
    Workload workload = Workload::Burst;
    double duration_s = 5.0;
    double rate = 0.0;  // total requests/s across all connections; 0 = closed loop
    std::optional<std::string> samples_path;
    double timeout_s = 30.0;
    double warmup_s = 0.0;  // unrecorded load before the measured window; 0 = none
};

// The burst warm-up opens a tenth of the connections: enough to run every code path once,
// at a tenth of the ephemeral ports the measured burst needs.
inline std::uint32_t warmup_burst_connections(std::uint32_t connections) {
    return connections / 10 > 0 ? connections / 10 : 1;
}

// Both return std::nullopt when --help was asked for (usage already printed on stdout).
std::optional<ServerOptions> parse_server_options(int argc, char** argv);
std::optional<ClientOptions> parse_client_options(int argc, char** argv);

std::string server_usage(std::string_view program);
std::string client_usage(std::string_view program);

}  // namespace echo
