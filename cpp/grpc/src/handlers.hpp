// What the bench services do, independent of the gRPC API that delivers the calls: both
// servers (async and callback) call these, so they cannot drift apart.
#pragma once

#include <grpcpp/support/status.h>
#include <time.h>

#include <cstdint>
#include <exception>
#include <string>

#include "bench.pb.h"
#include "crypto.hpp"

namespace grpcbench {

// Wall clock, Unix nanoseconds: what server_receive_unix_ns carries.
inline std::int64_t unix_now_ns() {
    timespec ts;
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Echo: the reply takes the request's payload (moved when the request is ours to empty).
inline void echo(bench::EchoRequest& request, bench::EchoReply& reply, std::int64_t received_ns) {
    reply.mutable_payload()->swap(*request.mutable_payload());
    reply.set_server_receive_unix_ns(received_ns);
}

inline void echo_copy(const bench::EchoRequest& request, bench::EchoReply& reply, std::int64_t received_ns) {
    reply.set_payload(request.payload());
    reply.set_server_receive_unix_ns(received_ns);
}

inline grpc::Status unknown_algorithm(int algorithm) {
    return {grpc::StatusCode::INVALID_ARGUMENT,
            algorithm == bench::SIGNATURE_ALGORITHM_UNSPECIFIED
                ? std::string("algorithm is unspecified")
                : "unknown algorithm " + std::to_string(algorithm)};
}

inline grpc::Status sign(const Signer& signer, const bench::SignRequest& request, bench::SignReply& reply,
                         std::int64_t received_ns) {
    if (!Signer::known(request.algorithm())) return unknown_algorithm(request.algorithm());
    try {
        signer.sign(request.algorithm(), request.payload(), *reply.mutable_signature());
    } catch (const std::exception& error) {
        return {grpc::StatusCode::INTERNAL, error.what()};
    }
    reply.set_algorithm(request.algorithm());
    reply.set_server_receive_unix_ns(received_ns);
    return grpc::Status::OK;
}

inline grpc::Status public_key(const Signer& signer, const bench::PublicKeyRequest& request,
                               bench::PublicKeyReply& reply) {
    if (!Signer::known(request.algorithm())) return unknown_algorithm(request.algorithm());
    reply.set_algorithm(request.algorithm());
    reply.set_subject_public_key_info(signer.public_key(request.algorithm()));
    return grpc::Status::OK;
}

}  // namespace grpcbench
