// cpp-grpc-check: protocol checks against a running bench gRPC server (any language's):
// health, echo sizes and limits, stream order, signatures verified with the served keys.
//   cpp-grpc-check TARGET        (TARGET as gRPC writes it: 127.0.0.1:PORT or unix:/path)
// Prints one line per check; exit 0 when all pass, 1 when any fails.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "bench.grpc.pb.h"

namespace {

int failures = 0;

void report(bool ok, const std::string& what, const std::string& detail = "") {
    std::printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what.c_str(), detail.empty() ? "" : ": ", detail.c_str());
    if (!ok) ++failures;
}

std::string status_text(const grpc::Status& status) {
    return "status " + std::to_string(status.error_code()) + " '" + status.error_message() + "'";
}

std::unique_ptr<grpc::ClientContext> context(int seconds = 20) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
    return ctx;
}

std::int64_t unix_now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// byte j of message k = (k + j) mod 251, as the load clients make them
std::string pattern(std::size_t size, std::size_t k) {
    std::string bytes(size, '\0');
    for (std::size_t j = 0; j < size; ++j) bytes[j] = static_cast<char>((k + j) % 251);
    return bytes;
}

// grpc.health.v1.Health/Check without its generated code: HealthCheckRequest{service = 1}
// and HealthCheckResponse{status = 1} are one field each.
void check_health(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::GenericStub stub(channel);
    for (std::string service : {"", "bench.Echo", "bench.Crypto", "no.such.Service"}) {
        std::string request;
        if (!service.empty()) {
            request.push_back(0x0A);
            request.push_back(static_cast<char>(service.size()));
            request += service;
        }
        grpc::Slice slice(request);
        grpc::ByteBuffer in(&slice, 1);
        grpc::ByteBuffer out;
        auto ctx = context();
        std::promise<grpc::Status> done;
        stub.UnaryCall(ctx.get(), "/grpc.health.v1.Health/Check", grpc::StubOptions(), &in, &out,
                       [&done](grpc::Status s) { done.set_value(std::move(s)); });
        grpc::Status status = done.get_future().get();
        std::string reply;
        std::vector<grpc::Slice> slices;
        if (status.ok() && out.Dump(&slices).ok()) {
            for (auto& s : slices) reply.append(reinterpret_cast<const char*>(s.begin()), s.size());
        }
        std::string name = "health '" + service + "'";
        if (service == "no.such.Service") {
            report(status.error_code() == grpc::StatusCode::NOT_FOUND, name + " is NOT_FOUND", status_text(status));
        } else {
            report(status.ok() && reply == std::string("\x08\x01", 2), name + " is SERVING",
                   status.ok() ? "reply of " + std::to_string(reply.size()) + " bytes" : status_text(status));
        }
    }
}

void check_unary(bench::Echo::Stub& echo) {
    for (std::size_t size : {0, 1, 100, 65536, 1 << 20, (4 << 20) - 64}) {
        bench::EchoRequest request;
        request.set_payload(pattern(size, size));
        request.set_client_send_unix_ns(unix_now_ns());
        bench::EchoReply reply;
        auto ctx = context();
        auto before = unix_now_ns();
        grpc::Status status = echo.Unary(ctx.get(), request, &reply);
        auto after = unix_now_ns();
        bool same = status.ok() && reply.payload() == request.payload();
        bool timed = reply.server_receive_unix_ns() >= before - 5'000'000'000 &&
                     reply.server_receive_unix_ns() <= after + 5'000'000'000;
        report(same && timed, "Unary echoes " + std::to_string(size) + " B",
               !status.ok() ? status_text(status) : !same ? "payload differs" : !timed ? "server_receive_unix_ns off" : "");
    }
    bench::EchoRequest big;
    big.set_payload(std::string((4 << 20) + 1, 'x'));
    bench::EchoReply reply;
    auto ctx = context();
    grpc::Status status = echo.Unary(ctx.get(), big, &reply);
    report(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED, "Unary over 4 MiB is RESOURCE_EXHAUSTED",
           status_text(status));
}

void check_stream(bench::Echo::Stub& echo) {
    // Ping-pong, then 64 requests written before any reply is read (pipelined).
    auto ctx = context();
    auto stream = echo.Stream(ctx.get());
    bool ok = true;
    std::string detail;
    for (std::size_t k = 0; k < 8 && ok; ++k) {
        bench::EchoRequest request;
        request.set_payload(pattern(100 + k, k));
        bench::EchoReply reply;
        ok = stream->Write(request) && stream->Read(&reply) && reply.payload() == request.payload();
        if (!ok) detail = "ping-pong message " + std::to_string(k);
    }
    constexpr std::size_t kPipelined = 64;
    for (std::size_t k = 0; k < kPipelined && ok; ++k) {
        bench::EchoRequest request;
        request.set_payload(pattern(1 + k * 37, k));
        ok = stream->Write(request);
        if (!ok) detail = "pipelined write " + std::to_string(k);
    }
    for (std::size_t k = 0; k < kPipelined && ok; ++k) {
        bench::EchoReply reply;
        ok = stream->Read(&reply) && reply.payload() == pattern(1 + k * 37, k);
        if (!ok) detail = "pipelined reply " + std::to_string(k) + " missing or out of order";
    }
    stream->WritesDone();
    bench::EchoReply extra;
    bool more = stream->Read(&extra);
    grpc::Status status = stream->Finish();
    report(ok && !more && status.ok(), "Stream answers in order and ends OK after the half-close",
           !detail.empty() ? detail : more ? "a reply too many" : status.ok() ? "" : status_text(status));
}

struct PkeyFree {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

bool verify(bench::SignatureAlgorithm algorithm, const std::string& spki, const std::string& payload,
            const std::string& signature, std::string& why) {
    const auto* cursor = reinterpret_cast<const unsigned char*>(spki.data());
    std::unique_ptr<EVP_PKEY, PkeyFree> key(d2i_PUBKEY(nullptr, &cursor, static_cast<long>(spki.size())));
    if (!key) return why = "public key is not SubjectPublicKeyInfo DER", false;
    std::string der_signature = signature;
    const EVP_MD* md = algorithm == bench::ECDSA_P384_SHA384 ? EVP_sha384() : EVP_sha256();
    if (algorithm == bench::ECDSA_P256_SHA256 || algorithm == bench::ECDSA_P384_SHA384) {
        std::size_t half = algorithm == bench::ECDSA_P256_SHA256 ? 32 : 48;
        if (signature.size() != 2 * half) return why = "P1363 signature of " + std::to_string(signature.size()) + " bytes", false;
        ECDSA_SIG* sig = ECDSA_SIG_new();
        const auto* bytes = reinterpret_cast<const unsigned char*>(signature.data());
        ECDSA_SIG_set0(sig, BN_bin2bn(bytes, static_cast<int>(half), nullptr),
                       BN_bin2bn(bytes + half, static_cast<int>(half), nullptr));
        unsigned char* der = nullptr;
        int length = i2d_ECDSA_SIG(sig, &der);
        der_signature.assign(reinterpret_cast<char*>(der), static_cast<std::size_t>(length));
        OPENSSL_free(der);
        ECDSA_SIG_free(sig);
    } else if (signature.size() != 256) {
        return why = "RSA signature of " + std::to_string(signature.size()) + " bytes", false;
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX* pctx = nullptr;
    bool ok = EVP_DigestVerifyInit(ctx, &pctx, md, nullptr, key.get()) == 1;
    if (ok && algorithm == bench::RSA_PKCS1_SHA256) ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
    if (ok && algorithm == bench::RSA_PSS_SHA256) {
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 32) == 1 && EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) == 1;
    }
    ok = ok && EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(der_signature.data()), der_signature.size(),
                                reinterpret_cast<const unsigned char*>(payload.data()), payload.size()) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) why = "signature does not verify";
    return ok;
}

void check_crypto(bench::Crypto::Stub& crypto) {
    const bench::SignatureAlgorithm all[] = {bench::RSA_PKCS1_SHA256, bench::RSA_PSS_SHA256, bench::ECDSA_P256_SHA256,
                                             bench::ECDSA_P384_SHA384};
    for (auto algorithm : all) {
        std::string name = bench::SignatureAlgorithm_Name(algorithm);
        bench::PublicKeyRequest key_request;
        key_request.set_algorithm(algorithm);
        bench::PublicKeyReply key;
        auto ctx = context();
        grpc::Status status = crypto.GetPublicKey(ctx.get(), key_request, &key);
        if (!status.ok() || key.algorithm() != algorithm) {
            report(false, name + " GetPublicKey", status_text(status));
            continue;
        }
        // Several threads at once, so calls land on the server's threads together.
        constexpr int kThreads = 4;
        constexpr int kEach = 6;
        std::vector<std::string> problems(kThreads);
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                for (int i = 0; i < kEach && problems[t].empty(); ++i) {
                    bench::SignRequest request;
                    request.set_algorithm(algorithm);
                    request.set_payload(pattern(static_cast<std::size_t>(i * 301), static_cast<std::size_t>(t)));
                    bench::SignReply reply;
                    auto call = context();
                    grpc::Status s = crypto.Sign(call.get(), request, &reply);
                    std::string why;
                    if (!s.ok()) {
                        problems[t] = status_text(s);
                    } else if (reply.algorithm() != algorithm) {
                        problems[t] = "algorithm not echoed";
                    } else if (reply.server_receive_unix_ns() == 0) {
                        problems[t] = "no server_receive_unix_ns";
                    } else if (!verify(algorithm, key.subject_public_key_info(), request.payload(), reply.signature(), why)) {
                        problems[t] = why;
                    }
                }
            });
        }
        for (auto& thread : threads) thread.join();
        std::string problem;
        for (auto& p : problems) if (problem.empty()) problem = p;
        report(problem.empty(), name + ": " + std::to_string(kThreads * kEach) + " signatures verify with the served key",
               problem);
    }
    for (int algorithm : {0, 99}) {
        bench::SignRequest request;
        request.set_algorithm(static_cast<bench::SignatureAlgorithm>(algorithm));
        request.set_payload("x");
        bench::SignReply reply;
        auto ctx = context();
        grpc::Status status = crypto.Sign(ctx.get(), request, &reply);
        report(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT,
               "Sign with algorithm " + std::to_string(algorithm) + " is INVALID_ARGUMENT", status_text(status));
        bench::PublicKeyRequest key_request;
        key_request.set_algorithm(static_cast<bench::SignatureAlgorithm>(algorithm));
        bench::PublicKeyReply key;
        auto ctx2 = context();
        status = crypto.GetPublicKey(ctx2.get(), key_request, &key);
        report(status.error_code() == grpc::StatusCode::INVALID_ARGUMENT,
               "GetPublicKey with algorithm " + std::to_string(algorithm) + " is INVALID_ARGUMENT", status_text(status));
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s TARGET   (127.0.0.1:PORT or unix:/path)\n", argv[0]);
        return 2;
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    auto channel = grpc::CreateCustomChannel(argv[1], grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
        std::fprintf(stderr, "cpp-grpc-check: cannot connect to %s\n", argv[1]);
        return 1;
    }
    auto echo = bench::Echo::NewStub(channel);
    auto crypto = bench::Crypto::NewStub(channel);
    check_health(channel);
    check_unary(*echo);
    check_stream(*echo);
    check_crypto(*crypto);
    std::printf("%s: %d failed\n", failures == 0 ? "all passed" : "FAILED", failures);
    return failures == 0 ? 0 : 1;
}
