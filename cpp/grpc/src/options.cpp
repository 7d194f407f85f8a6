#include "options.hpp"

#include <charconv>
#include <iostream>
#include <span>

namespace grpcbench {
namespace {

// Walks argv accepting both `--name value` and `--name=value` (as cpp/common does).
class ArgReader {
public:
    ArgReader(int argc, char** argv) : args_(argv + 1, argc > 0 ? argc - 1 : 0) {}

    bool next() {
        if (pos_ >= args_.size()) return false;
        std::string_view arg = args_[pos_++];
        has_inline_value_ = false;
        if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
            inline_value_ = arg.substr(eq + 1);
            has_inline_value_ = true;
            arg = arg.substr(0, eq);
        }
        name_ = arg;
        return true;
    }

    std::string_view name() const { return name_; }

    std::string_view value() {
        if (has_inline_value_) return inline_value_;
        if (pos_ >= args_.size()) throw UsageError(std::string(name_) + " needs a value");
        return args_[pos_++];
    }

private:
    std::span<char*> args_;
    std::size_t pos_ = 0;
    std::string_view name_;
    std::string_view inline_value_;
    bool has_inline_value_ = false;
};

template <typename T>
T parse_integer(std::string_view name, std::string_view text, T min, T max) {
    T value{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
        throw UsageError(std::string(name) + " must be an integer from " + std::to_string(min) +
                         " to " + std::to_string(max) + ", got '" + std::string(text) + "'");
    }
    return value;
}

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
