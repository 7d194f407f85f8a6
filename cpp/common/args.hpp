// Command-line reading every C++ program here shares (the echoes and cpp-grpc-server).
#pragma once

#include <charconv>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace echo {

// Thrown for arguments the contract does not allow; mains turn it into usage + exit 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Walks argv accepting both `--name value` and `--name=value`.
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
    std::string_view inline_value_;  // from `--name=value`
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

}  // namespace echo
