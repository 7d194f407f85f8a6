// The contract's process lifecycle, shared by every design: arguments and usage errors,
// descriptor limits, signals, the ready line, the RESULT line and exit statuses.
// A design only supplies what is its own: how it serves, and how it drives the load.
#pragma once

#include <cstdint>
#include <functional>

#include "net.hpp"
#include "options.hpp"
#include "report.hpp"

namespace echo {

// A server design, started: what it really bound, and how to stop it promptly.
struct RunningServer {
    Endpoint bound;
    std::function<void()> stop;
};

// Runs a server: parses arguments (exit 2 on bad ones), resolves the address, calls start
// (exit 1 with a message if it throws, e.g. cannot bind), prints the ready line, waits for
// SIGTERM or SIGINT, calls stop, and returns 0.
int serve(int argc, char** argv, const char* program,
          const std::function<RunningServer(const Endpoint&)>& start);

struct ClientRun {
    Tally total;
    std::uint64_t wall_ns = 0;
    CpuTime cpu;  // used in the measured window
};

// Runs a client: parses arguments (exit 2 on bad ones), raises the descriptor limit,
// resolves the server, calls drive, then writes samples and the summary lines and returns
// the exit status (0 all ok, 1 any failure).
int run_client(int argc, char** argv, const char* program,
               const std::function<ClientRun(const ClientOptions&, const Endpoint&, FailureLog&)>& drive);

}  // namespace echo
