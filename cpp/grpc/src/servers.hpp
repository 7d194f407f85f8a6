// The two ways this program can serve the bench services with gRPC C++ (README "Design").
#pragma once

#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <memory>

#include "crypto.hpp"

namespace grpcbench {

class BenchServer {
public:
    virtual ~BenchServer() = default;
    // Before BuildAndStart: register the services (and completion queues).
    virtual void configure(grpc::ServerBuilder& builder) = 0;
    // After BuildAndStart succeeded: start serving (post call requests, start threads).
    virtual void start() = 0;
    // Before grpc::Server::Shutdown: calls that end from now on are not replaced.
    virtual void begin_stop() = 0;
    // After grpc::Server::Shutdown returned: drain and stop whatever start() began.
    virtual void stop() = 0;
};

// The completion-queue API: `threads` completion queues, each drained by its own thread.
std::unique_ptr<BenchServer> make_async_server(const Signer& signer, unsigned threads);

// The callback API (CallbackService, ServerUnaryReactor, ServerBidiReactor); gRPC picks and
// runs its threads.
std::unique_ptr<BenchServer> make_callback_server(const Signer& signer);

}  // namespace grpcbench
