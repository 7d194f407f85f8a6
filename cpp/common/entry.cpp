#include "entry.hpp"

#include <cstdio>
#include <exception>
#include <iostream>

#include "system.hpp"

namespace echo {

int serve(int argc, char** argv, const char* program,
          const std::function<RunningServer(const Endpoint&)>& start) {
    std::optional<ServerOptions> options;
    try {
        options = parse_server_options(argc, argv);
    } catch (const UsageError& error) {
        // The contract's one line; the usage is one --help away.
        std::cerr << program << ": " << error.what() << "\n";
        return 2;
    }
    if (!options) return 0;  // --help

    ignore_sigpipe();
    // Before any thread exists, so every thread inherits the mask and only sigwait sees them.
    block_termination_signals();
    // A server cannot know how many peers will come; take all the descriptors allowed.
    reserve_descriptors(raise_file_limit(0, program));

    RunningServer server;
    try {
        server = start(resolve(options->host, options->port));
    } catch (const std::exception& error) {
        std::cerr << program << ": cannot listen on " << options->host << ":" << options->port << ": "
                  << error.what() << "\n";
        return 1;
    }
    std::printf("READY tcp %s\n", server.bound.to_string().c_str());
    std::fflush(stdout);

    wait_for_termination();
    server.stop();
    return 0;
}

int run_client(int argc, char** argv, const char* program,
               const std::function<ClientRun(const ClientOptions&, const Endpoint&, FailureLog&)>& drive) {
    std::optional<ClientOptions> options;
    try {
        options = parse_client_options(argc, argv);
    } catch (const UsageError& error) {
        std::cerr << program << ": " << error.what() << "\n";
        return 2;
    }
    if (!options) return 0;  // --help

    ignore_sigpipe();
    // One descriptor per connection plus a few for the process itself.
    const std::uint64_t descriptors = std::uint64_t{options->connections} + 64;
    raise_file_limit(descriptors, program);
    reserve_descriptors(descriptors);

    Endpoint server;
    try {
        server = resolve(options->host, options->port);
    } catch (const std::exception& error) {
        std::cerr << program << ": " << error.what() << "\n";
        return 2;
    }

    FailureLog failures(program);
    ClientRun run;
    try {
        run = drive(*options, server, failures);
    } catch (const std::exception& error) {
        // Only set-up failures get here (no epoll, no threads at all); requests never throw.
        std::cerr << program << ": " << error.what() << "\n";
        return 1;
    }
    return finish_client(*options, run.total, run.wall_ns, run.cpu, program);
}

}  // namespace echo
