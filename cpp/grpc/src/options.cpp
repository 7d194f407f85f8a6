#include "options.hpp"

#include <iostream>

namespace grpcbench {
namespace {

using echo::ArgReader;
using echo::parse_integer;

std::string non_empty(std::string_view name, std::string_view text) {
    if (text.empty()) throw UsageError(std::string(name) + " must not be empty");
    return std::string(text);
}

}  // namespace

std::string server_usage(std::string_view program) {
    return "usage: " + std::string(program) +
           " [--host HOST] [--port PORT | --unix PATH] [--api async|callback]\n"
           "       [--threads N] [--max-message-bytes N]\n"
           "  --host HOST             address to listen on (default 127.0.0.1)\n"
           "  --port PORT             port to listen on, 0 lets the kernel pick (default 0)\n"
           "  --unix PATH             listen on a Unix domain socket instead of TCP\n"
           "  --api async|callback    gRPC C++ server API (default async: one completion queue\n"
           "                          and thread per allowed CPU)\n"
           "  --threads N             async: completion-queue threads (default: CPUs in the\n"
           "                          affinity mask)\n"
           "  --max-message-bytes N   largest message received or sent (default 4194304)\n";
}

std::optional<ServerOptions> parse_server_options(int argc, char** argv) {
    ServerOptions options;
    bool have_tcp = false;
    ArgReader args(argc, argv);
    while (args.next()) {
        auto name = args.name();
        if (name == "--help" || name == "-h") {
            std::cout << server_usage(argc > 0 ? argv[0] : "cpp-grpc-server");
            return std::nullopt;
        } else if (name == "--host") {
            options.host = non_empty(name, args.value());
            have_tcp = true;
        } else if (name == "--port") {
            options.port = parse_integer<std::uint16_t>(name, args.value(), 0, 65535);
            have_tcp = true;
        } else if (name == "--unix") {
            options.unix_path = non_empty(name, args.value());
        } else if (name == "--api") {
            auto value = args.value();
            if (value == "async") {
                options.api = Api::Async;
            } else if (value == "callback") {
                options.api = Api::Callback;
            } else {
                throw UsageError("--api must be async or callback, got '" + std::string(value) + "'");
            }
        } else if (name == "--threads") {
            options.threads = parse_integer<unsigned>(name, args.value(), 1, 1024);
        } else if (name == "--max-message-bytes") {
            // gRPC takes an int; below 16 bytes not even an empty reply with its timestamp fits.
            options.max_message_bytes =
                parse_integer<std::size_t>(name, args.value(), 16, std::size_t{1} << 30);
        } else {
            throw UsageError("unknown argument '" + std::string(name) + "'");
        }
    }
    if (options.unix_path && have_tcp) throw UsageError("--unix cannot be combined with --host or --port");
    return options;
}

}  // namespace grpcbench
