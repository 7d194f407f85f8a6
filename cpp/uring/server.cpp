// cpp-uring server (the io_uring candidate measured against cpp-epoll): one io_uring per
// CPU the process may run on. Accept is multishot; every connection alternates one recv and
// one send, so it never reads while its echo is unsent (back-pressure). Receives take their
// buffer from a ring of provided buffers only when data arrives, so idle connections hold
// no buffer; a connection that finds the pool empty (every buffer held by a slow reader)
// gets a buffer of its own instead of waiting. All operations of a loop turn go to the
// kernel in one io_uring_enter.
#include <fcntl.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <latch>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "entry.hpp"
#include "system.hpp"

namespace {

constexpr const char* kProgram = "cpp-uring-server";
constexpr unsigned kRingEntries = 4096;
constexpr unsigned kBufferCount = 1024;  // a power of two, as the buffer ring requires
constexpr unsigned kBufferSize = 16 * 1024;
constexpr unsigned kBufferGroup = 0;

enum class Op : std::uint64_t { Accept = 1, Recv, Send, Close, Wake };

std::uint64_t tag(Op op, int fd) { return static_cast<std::uint64_t>(op) << 32 | static_cast<std::uint32_t>(fd); }
Op op_of(std::uint64_t data) { return static_cast<Op>(data >> 32); }
int fd_of(std::uint64_t data) { return static_cast<int>(data & 0xffffffffu); }

std::atomic<bool> said_no_fds{false};

// A connection has at most one operation in flight, so its fd cannot be reused under it.
struct Connection {
    int buffer = -1;  // provided buffer held while its bytes are being sent back
    // Only once the shared pool ran dry: from then on this connection reads into its own
    // buffer, so memory stays bounded per connection (one buffer) and nobody is starved.
    std::unique_ptr<std::byte[]> own;
    unsigned length = 0;
    unsigned offset = 0;
    bool closing = false;  // its close is submitted; the descriptor may be reused any moment
};

class UringLoop {
public:
    explicit UringLoop(int listener) : listener_(listener) {}
    UringLoop(const UringLoop&) = delete;
    UringLoop& operator=(const UringLoop&) = delete;

    ~UringLoop() {
        if (ring_ready_) ::io_uring_queue_exit(&ring_);
        if (buffer_ring_ != nullptr) ::munmap(buffer_ring_, ring_bytes());
        for (std::size_t fd = 0; fd < connections_.size(); ++fd) {
            if (connections_[fd] && !connections_[fd]->closing) ::close(static_cast<int>(fd));
        }
    }

    // Runs on the loop's own thread: the ring is created there because it is set up for a
    // single issuer, with completions processed only when that thread asks (DEFER_TASKRUN).
    void setup() {
        io_uring_params params{};
        params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
        params.cq_entries = kRingEntries * 4;  // multishot accept can outrun one CQE per SQE
        if (int rc = ::io_uring_queue_init_params(kRingEntries, &ring_, &params); rc < 0) {
            throw std::system_error(-rc, std::generic_category(), "io_uring_queue_init");
        }
        ring_ready_ = true;

        void* memory = ::mmap(nullptr, ring_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
        buffer_ring_ = static_cast<io_uring_buf_ring*>(memory);
        io_uring_buf_reg registration{};
        registration.ring_addr = reinterpret_cast<std::uint64_t>(buffer_ring_);
        registration.ring_entries = kBufferCount;
        registration.bgid = kBufferGroup;
        if (int rc = ::io_uring_register_buf_ring(&ring_, &registration, 0); rc < 0) {
            throw std::system_error(-rc, std::generic_category(), "io_uring_register_buf_ring");
        }
        ::io_uring_buf_ring_init(buffer_ring_);
        // Not zero-filled: pages are only touched (made resident) as buffers get used.
        buffers_.reset(new std::byte[std::size_t{kBufferCount} * kBufferSize]);
        for (unsigned i = 0; i < kBufferCount; ++i) give_back(static_cast<int>(i));

        wake_.reset(::eventfd(0, EFD_CLOEXEC));
        spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        if (!wake_) throw std::system_error(errno, std::generic_category(), "eventfd");
        arm_accept();
        auto* sqe = next_sqe();
        ::io_uring_prep_read(sqe, wake_.get(), &wake_value_, sizeof wake_value_, 0);
        ::io_uring_sqe_set_data64(sqe, tag(Op::Wake, wake_.get()));
    }

    void run() {
        while (!stopping_) {
            int rc = ::io_uring_submit_and_wait(&ring_, 1);
            if (rc < 0 && rc != -EINTR && rc != -EBUSY) {
                std::fprintf(stderr, "%s: io_uring_submit_and_wait: %s\n", kProgram, std::strerror(-rc));
                return;
            }
            unsigned head, seen = 0;
            io_uring_cqe* cqe;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                complete(io_uring_cqe_get_data64(cqe), cqe->res, cqe->flags);
                ++seen;
            }
            ::io_uring_cq_advance(&ring_, seen);
        }
    }

    // Safe from any thread: the loop's pending read on the eventfd completes.
    void stop() {
        std::uint64_t one = 1;
        [[maybe_unused]] auto written = ::write(wake_.get(), &one, sizeof one);
    }

private:
    static std::size_t ring_bytes() { return sizeof(io_uring_buf) * kBufferCount; }

    io_uring_sqe* next_sqe() {
        io_uring_sqe* sqe = ::io_uring_get_sqe(&ring_);
        while (sqe == nullptr) {  // submission queue full: hand what we have to the kernel
            ::io_uring_submit(&ring_);
            sqe = ::io_uring_get_sqe(&ring_);
        }
        return sqe;
    }

    void give_back(int buffer) {
        ::io_uring_buf_ring_add(buffer_ring_, buffers_.get() + std::size_t(buffer) * kBufferSize, kBufferSize,
                                static_cast<unsigned short>(buffer), ::io_uring_buf_ring_mask(kBufferCount), 0);
        ::io_uring_buf_ring_advance(buffer_ring_, 1);
    }

    void arm_accept() {
        auto* sqe = next_sqe();
        ::io_uring_prep_multishot_accept(sqe, listener_, nullptr, nullptr, SOCK_CLOEXEC);
        ::io_uring_sqe_set_data64(sqe, tag(Op::Accept, listener_));
    }

    void submit_recv(int fd) {
        auto& connection = *connections_[fd];
        auto* sqe = next_sqe();
        if (connection.own) {
            ::io_uring_prep_recv(sqe, fd, connection.own.get(), kBufferSize, 0);
        } else {
            ::io_uring_prep_recv(sqe, fd, nullptr, kBufferSize, 0);
            sqe->flags |= IOSQE_BUFFER_SELECT;
            sqe->buf_group = kBufferGroup;
        }
        ::io_uring_sqe_set_data64(sqe, tag(Op::Recv, fd));
    }

    const std::byte* data(const Connection& connection) const {
        return connection.buffer >= 0 ? buffers_.get() + std::size_t(connection.buffer) * kBufferSize
                                      : connection.own.get();
    }

    void submit_send(int fd, Connection& connection) {
        auto* sqe = next_sqe();
        ::io_uring_prep_send(sqe, fd, data(connection) + connection.offset, connection.length - connection.offset,
                             MSG_NOSIGNAL);
        ::io_uring_sqe_set_data64(sqe, tag(Op::Send, fd));
    }

    void submit_close(int fd) {
        auto& connection = *connections_[fd];
        if (connection.buffer >= 0) give_back(std::exchange(connection.buffer, -1));
        connection.closing = true;
        auto* sqe = next_sqe();
        ::io_uring_prep_close(sqe, fd);
        ::io_uring_sqe_set_data64(sqe, tag(Op::Close, fd));
    }

    bool is_open(int fd) const {  // has state (possibly closing)
        return fd >= 0 && static_cast<std::size_t>(fd) < connections_.size() && connections_[fd] != nullptr;
    }

    void complete(std::uint64_t data, int res, unsigned flags) {
        int fd = fd_of(data);
        switch (op_of(data)) {
            case Op::Accept: return accepted(res, flags);
            case Op::Wake: stopping_ = true; return;
            case Op::Close:
                // Only the state of the connection that was closed: should an accept that
                // reused the number ever be seen first, its fresh state must survive.
                if (is_open(fd) && connections_[fd]->closing) connections_[fd].reset();
                return;
            case Op::Recv: return received(fd, res, flags);
            case Op::Send: return sent(fd, res);
        }
    }

    void accepted(int res, unsigned flags) {
        if (res >= 0) {
            if (static_cast<std::size_t>(res) >= connections_.size()) connections_.resize(res + 1024);
            connections_[res] = std::make_unique<Connection>();
            submit_recv(res);  // TCP_NODELAY is inherited from the listener
        } else if (res == -EMFILE || res == -ENFILE) {
            // Out of descriptors: shed one queued connection with the spare descriptor so the
            // peer sees a close, not a hang, and the loop does not spin on the same error.
            if (!said_no_fds.exchange(true)) {
                std::fprintf(stderr, "%s: out of file descriptors; closing new connections until some end\n",
                             kProgram);
            }
            spare_fd_.reset();
            echo::Fd shed(::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
            shed.reset();
            spare_fd_.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        }
        if (!(flags & IORING_CQE_F_MORE) && !stopping_) arm_accept();  // the multishot ended
    }

    void received(int fd, int res, unsigned flags) {
        if (!is_open(fd)) return;
        auto& connection = *connections_[fd];
        if (res == -ENOBUFS) {
            // Every pooled buffer is out being echoed to slow readers: read into our own.
            connection.own = std::make_unique_for_overwrite<std::byte[]>(kBufferSize);
            return submit_recv(fd);
        }
        if (res <= 0) {
            // A buffer reported with an empty or failed receive still belongs to us.
            if (flags & IORING_CQE_F_BUFFER) give_back(static_cast<int>(flags >> IORING_CQE_BUFFER_SHIFT));
            return submit_close(fd);  // EOF (all echoed) or reset
        }
        connection.buffer = (flags & IORING_CQE_F_BUFFER) ? static_cast<int>(flags >> IORING_CQE_BUFFER_SHIFT) : -1;
        connection.length = static_cast<unsigned>(res);
        connection.offset = 0;
        submit_send(fd, connection);
    }

    void sent(int fd, int res) {
        if (!is_open(fd)) return;
        auto& connection = *connections_[fd];
        if (res < 0) return submit_close(fd);
        connection.offset += static_cast<unsigned>(res);
        if (connection.offset < connection.length) return submit_send(fd, connection);
        if (connection.buffer >= 0) give_back(std::exchange(connection.buffer, -1));
        submit_recv(fd);
    }

    int listener_;
    io_uring ring_{};
    bool ring_ready_ = false;
    io_uring_buf_ring* buffer_ring_ = nullptr;
    std::unique_ptr<std::byte[]> buffers_;
    echo::Fd wake_;
    echo::Fd spare_fd_;
    std::uint64_t wake_value_ = 0;
    std::vector<std::unique_ptr<Connection>> connections_;  // by descriptor
    bool stopping_ = false;
};

class UringServer {
public:
    explicit UringServer(const echo::Endpoint& endpoint)
        : listener_(echo::listen_tcp(endpoint, /*non_blocking=*/true)) {  // shedding uses accept4
        unsigned count = echo::allowed_cpu_count();
        std::latch ready(count);
        std::vector<std::string> errors(count);
        for (unsigned i = 0; i < count; ++i) loops_.push_back(std::make_unique<UringLoop>(listener_.get()));
        for (unsigned i = 0; i < count; ++i) {
            threads_.emplace_back([this, i, &ready, &errors] {
                try {
                    loops_[i]->setup();
                } catch (const std::exception& error) {
                    errors[i] = error.what();
                }
                bool ok = errors[i].empty();
                ready.count_down();
                if (ok) loops_[i]->run();
            });
        }
        ready.wait();
        for (auto& error : errors) {
            if (!error.empty()) {
                stop();
                throw std::runtime_error(error);
            }
        }
    }

    echo::Endpoint bound() const { return echo::local_endpoint(listener_.get()); }

    void stop() {
        for (auto& loop : loops_) loop->stop();
        threads_.clear();  // joins
    }

private:
    echo::Fd listener_;
    std::vector<std::unique_ptr<UringLoop>> loops_;
    std::vector<std::jthread> threads_;
};

}  // namespace

int main(int argc, char** argv) {
    std::unique_ptr<UringServer> server;
    return echo::serve(argc, argv, kProgram, [&](const echo::Endpoint& endpoint) {
        server = std::make_unique<UringServer>(endpoint);
        return echo::RunningServer{server->bound(), [&] { server->stop(); }};
    });
}
