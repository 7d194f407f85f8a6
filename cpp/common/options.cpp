#include "options.hpp"

#include <charconv>
#include <cmath>
#include <iostream>
#include <limits>

namespace echo {
namespace {

// Shortest form that reads back the same: "0" and "86400", not "0.000000".
std::string format_number(double value) {
    char buffer[32];
    auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
    return ec == std::errc{} ? std::string(buffer, end) : std::to_string(value);
}

double parse_number(std::string_view name, std::string_view text, double min, bool min_inclusive,
                    double max) {
    double value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    bool in_range = std::isfinite(value) && (min_inclusive ? value >= min : value > min) &&
                    value <= max;
    if (ec != std::errc{} || end != text.data() + text.size() || !in_range) {
        throw UsageError(std::string(name) + " must be a number " + (min_inclusive ? ">= " : "> ") +
                         format_number(min) + " and <= " + format_number(max) + ", got '" +
                         std::string(text) + "'");
    }
    return value;
}

std::string parse_host(std::string_view text) {
    if (text.empty()) throw UsageError("--host must not be empty");
    return std::string(text);
}

bool is_help(std::string_view arg) { return arg == "--help" || arg == "-h"; }

}  // namespace

std::string server_usage(std::string_view program) {
    return "usage: " + std::string(program) + " [--host HOST] [--port PORT]\n"
           "  --host HOST   address to listen on (default 127.0.0.1)\n"
           "  --port PORT   port to listen on, 0 lets the kernel pick (default 0)\n";
}

std::string client_usage(std::string_view program) {
    return "usage: " + std::string(program) +
           " --port PORT [--host HOST] [--connections N] [--payload BYTES]\n"
           "       [--workload burst|persistent] [--duration SECONDS] [--rate REQ_PER_S]\n"
           "       [--samples PATH] [--timeout SECONDS] [--warmup SECONDS]\n"
           "  --host HOST          server address (default 127.0.0.1)\n"
           "  --port PORT          server port (required)\n"
           "  --connections N      concurrent connections (default 10000)\n"
           "  --payload BYTES      bytes per request (default 100)\n"
           "  --workload NAME      burst or persistent (default burst)\n"
           "  --duration SECONDS   persistent: seconds of measurement (default 5)\n"
           "  --rate REQ_PER_S     persistent: total requests/s, 0 = closed loop (default 0)\n"
           "  --samples PATH       write latency samples (little-endian u64 ns) to PATH\n"
           "  --timeout SECONDS    max wait on one connect, write or read (default 30)\n"
           "  --warmup SECONDS     unrecorded load before the measured window (default 0)\n";
}

std::optional<ServerOptions> parse_server_options(int argc, char** argv) {
    ServerOptions options;
    ArgReader args(argc, argv);
    while (args.next()) {
        auto name = args.name();
        if (is_help(name)) {
            std::cout << server_usage(argc > 0 ? argv[0] : "server");
            return std::nullopt;
        } else if (name == "--host") {
            options.host = parse_host(args.value());
        } else if (name == "--port") {
            options.port = parse_integer<std::uint16_t>(name, args.value(), 0, 65535);
        } else {
            throw UsageError("unknown argument '" + std::string(name) + "'");
        }
    }
    return options;
}

std::optional<ClientOptions> parse_client_options(int argc, char** argv) {
    ClientOptions options;
    bool have_port = false;
    ArgReader args(argc, argv);
    while (args.next()) {
        auto name = args.name();
        if (is_help(name)) {
            std::cout << client_usage(argc > 0 ? argv[0] : "client");
            return std::nullopt;
        } else if (name == "--host") {
            options.host = parse_host(args.value());
        } else if (name == "--port") {
            options.port = parse_integer<std::uint16_t>(name, args.value(), 1, 65535);
            have_port = true;
        } else if (name == "--connections") {
            // Beyond a million the fd limit and ephemeral ports run out long before.
            options.connections = parse_integer<std::uint32_t>(name, args.value(), 1, 1'000'000);
        } else if (name == "--payload") {
            // Payloads are streamed, never held whole; the cap only keeps byte counts sane.
            options.payload = parse_integer<std::size_t>(name, args.value(), 1, std::size_t{1} << 30);
        } else if (name == "--workload") {
            auto value = args.value();
            if (value == "burst") {
                options.workload = Workload::Burst;
            } else if (value == "persistent") {
                options.workload = Workload::Persistent;
            } else {
                throw UsageError("unsupported workload '" + std::string(value) +
                                 "' (this client runs burst and persistent)");
            }
        } else if (name == "--duration") {
            options.duration_s = parse_number(name, args.value(), 0.0, false, 86400.0);
        } else if (name == "--rate") {
            options.rate = parse_number(name, args.value(), 0.0, true, 1e9);
        } else if (name == "--samples") {
            auto value = args.value();
            if (value.empty()) throw UsageError("--samples must not be empty");
            options.samples_path = std::string(value);
        } else if (name == "--timeout") {
            options.timeout_s = parse_number(name, args.value(), 0.0, false, 86400.0);
        } else if (name == "--warmup") {
            options.warmup_s = parse_number(name, args.value(), 0.0, true, 86400.0);
        } else {
            throw UsageError("unknown argument '" + std::string(name) + "'");
        }
    }
    if (!have_port) throw UsageError("--port is required");
    return options;
}

}  // namespace echo
