// The contract's payload pattern: byte j of request k on connection c is (c + k + j) mod 251.
// A prime modulus that does not divide common payload sizes means a crossed or stale echo
// (another connection's bytes, or the previous request's) never verifies by accident.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace echo {

class Payload {
public:
    static constexpr unsigned kModulus = 251;

    Payload(std::uint64_t connection, std::uint64_t request)
        : first_(static_cast<unsigned>((connection % kModulus + request % kModulus) % kModulus)) {}

    // Writes bytes [offset, offset + out.size()) of the request into out.
    void fill(std::span<std::uint8_t> out, std::size_t offset) const {
        unsigned value = at(offset);
        for (auto& byte : out) {
            byte = static_cast<std::uint8_t>(value);
            if (++value == kModulus) value = 0;
        }
    }

    // True when in holds exactly bytes [offset, offset + in.size()) of the request.
    bool matches(std::span<const std::uint8_t> in, std::size_t offset) const {
        unsigned value = at(offset);
        for (auto byte : in) {
            if (byte != value) return false;
            if (++value == kModulus) value = 0;
        }
        return true;
    }

private:
    unsigned at(std::size_t offset) const {
        return static_cast<unsigned>((first_ + offset % kModulus) % kModulus);
    }

    unsigned first_;
};

}  // namespace echo
