// The async (completion-queue) server: one ServerCompletionQueue per thread, one thread per
// CPU the process may run on. Every call is requested on one queue and all of its events
// come back on that queue, so a call's state is only ever touched by one thread: no locks.
// Each thread polls the network itself inside cq->Next() (gRPC's epoll1 engine lets the
// threads that wait on completion queues do the I/O), runs the handler inline and writes
// the reply, with no hand-off to another thread anywhere on the path.
#include <grpcpp/grpcpp.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench.grpc.pb.h"
#include "handlers.hpp"
#include "servers.hpp"

namespace grpcbench {
namespace {

// Calls requested ahead, per method, across all queues (split evenly, at least kMinAhead on
// each). A call that arrives when none is requested waits in the server's queue of unmatched
// calls, and leaves it only when a matched call posts its replacement, which happens on the
// queue's thread after every event queued before it: with 32 ahead, 10,000 streams opened at
// once took 4 to 6 s for the last ones to get their first reply (the lean client, one core),
// against under 2 s with 1,000 ahead. Unary calls replace themselves as fast as they come, so
// the same number keeps a burst off the slow path. Each one ahead costs about 3 KiB.
constexpr int kUnaryAhead = 1024;
constexpr int kStreamAhead = 1024;
constexpr int kSignAhead = 256;
constexpr int kPublicKeyAhead = 8;
constexpr int kMinAhead = 4;

// Everything that is put on a completion queue is a Tag; Next() hands it back with `ok`.
struct Tag {
    virtual void done(bool ok) = 0;

protected:
    ~Tag() = default;
};

class AsyncServer;

// How to request one unary method and what to do with its request.
template <typename Request, typename Reply>
struct UnaryMethod {
    void (*request)(AsyncServer&, grpc::ServerContext*, Request*, grpc::ServerAsyncResponseWriter<Reply>*,
                    grpc::ServerCompletionQueue*, void*);
    grpc::Status (*handle)(AsyncServer&, Request&, Reply&);
};

class AsyncServer final : public BenchServer {
public:
    AsyncServer(const Signer& signer, unsigned threads) : signer_(signer), thread_count_(threads) {}

    void configure(grpc::ServerBuilder& builder) override {
        builder.RegisterService(&echo_);
        builder.RegisterService(&crypto_);
        for (unsigned i = 0; i < thread_count_; ++i) queues_.push_back(builder.AddCompletionQueue());
    }

    void start() override;

    void stop() override {
        // grpc::Server::Shutdown has returned: every call has ended, no request is pending.
        for (auto& queue : queues_) queue->Shutdown();
        for (auto& thread : threads_) thread.join();
        threads_.clear();
    }

    // Set once shutdown starts: calls that end are not replaced by new requests.
    bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
    void begin_stop() override { stopping_.store(true, std::memory_order_relaxed); }

    const Signer& signer() const { return signer_; }
    bench::Echo::AsyncService& echo() { return echo_; }
    bench::Crypto::AsyncService& crypto() { return crypto_; }

private:
    const Signer& signer_;
    unsigned thread_count_;
    bench::Echo::AsyncService echo_;
    bench::Crypto::AsyncService crypto_;
    std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
    std::vector<std::thread> threads_;
    std::atomic<bool> stopping_{false};
};

// One unary call, from its request to its finish; deletes itself.
template <typename Request, typename Reply>
class UnaryCall final : public Tag {
public:
    UnaryCall(AsyncServer& server, const UnaryMethod<Request, Reply>& method, grpc::ServerCompletionQueue* queue)
        : server_(server), method_(method), queue_(queue) {
        method_.request(server_, &context_, &request_, &writer_, queue_, this);
    }

    void done(bool ok) override {
        if (finishing_ || !ok) {
            // Finished (sent or not: a client that went away is nothing to report), or a
            // request that the shutting-down server will never match.
            delete this;
            return;
        }
        // Keep the number of requests ahead constant: replace this one before serving it.
        if (!server_.stopping()) new UnaryCall(server_, method_, queue_);
        grpc::Status status = method_.handle(server_, request_, reply_);
        finishing_ = true;
        if (status.ok()) {
            writer_.Finish(reply_, status, this);
        } else {
            writer_.FinishWithError(status, this);
        }
    }

private:
    AsyncServer& server_;
    const UnaryMethod<Request, Reply>& method_;
    grpc::ServerCompletionQueue* queue_;
    grpc::ServerContext context_;
    Request request_;
    Reply reply_;
    grpc::ServerAsyncResponseWriter<Reply> writer_{&context_};
    bool finishing_ = false;
};

// One Echo/Stream call: one reply per request, in order. The next request is read while the
// last reply is being written; if it arrives before that write completes it waits in
// `request_` (no further read is started), so a call holds at most one request and one
// reply, however fast its client sends.
class StreamCall {
public:
    StreamCall(AsyncServer& server, grpc::ServerCompletionQueue* queue) : server_(server), queue_(queue) {
        server_.echo().RequestStream(&context_, &stream_, queue_, queue_, &started_);
    }

private:
    // A call has several operations outstanding at once, each with its own tag.
    struct Op final : Tag {
        Op(StreamCall* call, void (StreamCall::*handler)(bool)) : call_(call), handler_(handler) {}
        void done(bool ok) override { (call_->*handler_)(ok); }
        StreamCall* call_;
        void (StreamCall::*handler_)(bool);
    };

    void on_started(bool ok) {
        if (!ok) {
            delete this;
            return;
        }
        if (!server_.stopping()) new StreamCall(server_, queue_);
        read();
    }

    void read() {
        reading_ = true;
        stream_.Read(&request_, &read_);
    }

    void answer() {
        echo(request_, reply_, unix_now_ns());
        writing_ = true;
        stream_.Write(reply_, &write_);  // serialises reply_ now; it is free again on return
    }

    void on_read(bool ok) {
        reading_ = false;
        if (!ok) {
            input_done_ = true;  // the client half-closed (or the call is gone)
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

    void on_write(bool ok) {
        writing_ = false;
        if (!ok) {
            broken_ = true;  // the stream is gone: cancelled or reset by the client
        } else if (held_) {
            held_ = false;
            answer();
            read();
            return;
        }
        maybe_finish();
    }

    void maybe_finish() {
        if (reading_ || writing_ || finishing_) return;
        if (!broken_ && !input_done_) return;
        finishing_ = true;
        stream_.Finish(broken_ ? grpc::Status::CANCELLED : grpc::Status::OK, &finished_);
    }

    void on_finished(bool) { delete this; }

    AsyncServer& server_;
    grpc::ServerCompletionQueue* queue_;
    grpc::ServerContext context_;
    grpc::ServerAsyncReaderWriter<bench::EchoReply, bench::EchoRequest> stream_{&context_};
    bench::EchoRequest request_;
    bench::EchoReply reply_;
    Op started_{this, &StreamCall::on_started};
    Op read_{this, &StreamCall::on_read};
    Op write_{this, &StreamCall::on_write};
    Op finished_{this, &StreamCall::on_finished};
    bool reading_ = false;
    bool writing_ = false;
    bool held_ = false;        // request_ holds a message whose reply waits for the write
    bool input_done_ = false;  // a read came back empty: no more requests
    bool broken_ = false;      // a write failed
    bool finishing_ = false;
};

const UnaryMethod<bench::EchoRequest, bench::EchoReply> kUnary{
    [](AsyncServer& s, grpc::ServerContext* c, bench::EchoRequest* r,
       grpc::ServerAsyncResponseWriter<bench::EchoReply>* w, grpc::ServerCompletionQueue* q,
       void* tag) { s.echo().RequestUnary(c, r, w, q, q, tag); },
    [](AsyncServer&, bench::EchoRequest& request, bench::EchoReply& reply) {
        echo(request, reply, unix_now_ns());
        return grpc::Status::OK;
    },
};

const UnaryMethod<bench::SignRequest, bench::SignReply> kSign{
    [](AsyncServer& s, grpc::ServerContext* c, bench::SignRequest* r,
       grpc::ServerAsyncResponseWriter<bench::SignReply>* w, grpc::ServerCompletionQueue* q,
       void* tag) { s.crypto().RequestSign(c, r, w, q, q, tag); },
    [](AsyncServer& s, bench::SignRequest& request, bench::SignReply& reply) {
        return sign(s.signer(), request, reply, unix_now_ns());
    },
};

const UnaryMethod<bench::PublicKeyRequest, bench::PublicKeyReply> kGetPublicKey{
    [](AsyncServer& s, grpc::ServerContext* c, bench::PublicKeyRequest* r,
       grpc::ServerAsyncResponseWriter<bench::PublicKeyReply>* w, grpc::ServerCompletionQueue* q,
       void* tag) { s.crypto().RequestGetPublicKey(c, r, w, q, q, tag); },
    [](AsyncServer& s, bench::PublicKeyRequest& request, bench::PublicKeyReply& reply) {
        return public_key(s.signer(), request, reply);
    },
};

void AsyncServer::start() {
    const int queues = static_cast<int>(queues_.size());
    auto share = [queues](int total) { return std::max(kMinAhead, (total + queues - 1) / queues); };
    for (auto& queue : queues_) {
        auto* q = queue.get();
        for (int i = 0; i < share(kUnaryAhead); ++i) new UnaryCall(*this, kUnary, q);
        for (int i = 0; i < share(kStreamAhead); ++i) new StreamCall(*this, q);
        for (int i = 0; i < share(kSignAhead); ++i) new UnaryCall(*this, kSign, q);
        for (int i = 0; i < share(kPublicKeyAhead); ++i) new UnaryCall(*this, kGetPublicKey, q);
        threads_.emplace_back([q, name = "cq-" + std::to_string(threads_.size())] {
            ::pthread_setname_np(::pthread_self(), name.c_str());  // for top -H and the tests
            void* tag = nullptr;
            bool ok = false;
            while (q->Next(&tag, &ok)) static_cast<Tag*>(tag)->done(ok);
        });
    }
}

}  // namespace

std::unique_ptr<BenchServer> make_async_server(const Signer& signer, unsigned threads) {
    return std::make_unique<AsyncServer>(signer, threads);
}

}  // namespace grpcbench
