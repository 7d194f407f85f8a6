// The callback-API server: CallbackService methods that answer on the thread gRPC runs them
// on. Unary methods finish through the context's default reactor (no allocation of our own);
// the bidi stream is a ServerBidiReactor. gRPC 1.51 on Linux (epoll1, not the EventEngine)
// runs callbacks on its own "callback alternative" completion queue, drained by a pool of
// threads it sizes itself (at least 2); nothing here sets a thread count.
#include <grpcpp/grpcpp.h>

#include <mutex>

#include "bench.grpc.pb.h"
#include "handlers.hpp"
#include "servers.hpp"

namespace grpcbench {
namespace {

// Reads and writes of one stream may complete on two threads at once, so the little state
// that joins them is under a mutex. At most one request waits for the write ahead of it.
class StreamReactor final : public grpc::ServerBidiReactor<bench::EchoRequest, bench::EchoReply> {
public:
    StreamReactor() { read(); }

    void OnReadDone(bool ok) override {
        std::unique_lock lock(mutex_);
        reading_ = false;
        if (!ok) {
            input_done_ = true;
        } else if (!broken_) {
            if (writing_) {
                held_ = true;
                return;
            }
            answer();
            read();
            return;
        }
        maybe_finish();
    }

    void OnWriteDone(bool ok) override {
        std::unique_lock lock(mutex_);
        writing_ = false;
        if (!ok) {
            broken_ = true;
        } else if (held_) {
            held_ = false;
            answer();
            read();
            return;
        }
        maybe_finish();
    }

    void OnDone() override { delete this; }

private:
    void read() {
        reading_ = true;
        StartRead(&request_);
    }

    void answer() {
        // The callback API keeps a pointer to the message until the write completes, so
        // replies alternate between two buffers: the one being written is never touched.
        bench::EchoReply& reply = replies_[next_reply_];
        next_reply_ ^= 1;
        echo(request_, reply, unix_now_ns());
        writing_ = true;
        StartWrite(&reply);
    }

    void maybe_finish() {
        if (reading_ || writing_ || finishing_) return;
        if (!broken_ && !input_done_) return;
        finishing_ = true;
        Finish(broken_ ? grpc::Status::CANCELLED : grpc::Status::OK);
    }

    std::mutex mutex_;
    bench::EchoRequest request_;
    bench::EchoReply replies_[2];
    int next_reply_ = 0;
    bool reading_ = false;
    bool writing_ = false;
    bool held_ = false;
    bool input_done_ = false;
    bool broken_ = false;
    bool finishing_ = false;
};

class EchoService final : public bench::Echo::CallbackService {
    grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, const bench::EchoRequest* request,
                                    bench::EchoReply* reply) override {
        echo_copy(*request, *reply, unix_now_ns());
        auto* reactor = context->DefaultReactor();
        reactor->Finish(grpc::Status::OK);
        return reactor;
    }

    grpc::ServerBidiReactor<bench::EchoRequest, bench::EchoReply>* Stream(grpc::CallbackServerContext*) override {
        return new StreamReactor();
    }
};

class CryptoService final : public bench::Crypto::CallbackService {
public:
    explicit CryptoService(const Signer& signer) : signer_(signer) {}

private:
    grpc::ServerUnaryReactor* Sign(grpc::CallbackServerContext* context, const bench::SignRequest* request,
                                   bench::SignReply* reply) override {
        auto* reactor = context->DefaultReactor();
        reactor->Finish(sign(signer_, *request, *reply, unix_now_ns()));
        return reactor;
    }

    grpc::ServerUnaryReactor* GetPublicKey(grpc::CallbackServerContext* context,
                                           const bench::PublicKeyRequest* request,
                                           bench::PublicKeyReply* reply) override {
        auto* reactor = context->DefaultReactor();
        reactor->Finish(public_key(signer_, *request, *reply));
        return reactor;
    }

    const Signer& signer_;
};

class CallbackServer final : public BenchServer {
public:
    explicit CallbackServer(const Signer& signer) : crypto_(signer) {}

    void configure(grpc::ServerBuilder& builder) override {
        builder.RegisterService(&echo_);
        builder.RegisterService(&crypto_);
    }
    void start() override {}
    void begin_stop() override {}
    void stop() override {}

private:
    EchoService echo_;
    CryptoService crypto_;
};

}  // namespace

std::unique_ptr<BenchServer> make_callback_server(const Signer& signer) {
    return std::make_unique<CallbackServer>(signer);
}

}  // namespace grpcbench
