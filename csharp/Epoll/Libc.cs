using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Bench.Epoll;

/// <summary>
/// The libc calls cpp-epoll makes, one for one, as LibraryImport stubs with blittable arguments
/// only (pointers, ints), so the JIT inlines each P/Invoke into its caller with no marshalling.
/// Values are Linux x86_64/arm64 (the same on both, except epoll_event's layout: see <see cref="EpollEvent"/>).
/// </summary>
/// <remarks>
/// <para>SuppressGCTransition (no switch to preemptive mode and back around the call) is on the
/// calls that never block here: recv, send and accept4 on non-blocking sockets, epoll_ctl,
/// close (no SO_LINGER is ever set, so close never waits). It is not on epoll_wait/epoll_pwait2,
/// which block for as long as the loop is idle: a thread in cooperative mode there would hold
/// up every garbage collection of the process until its next event.</para>
/// <para>errno: the suppressed calls are read with <see cref="Errno"/> straight after the call,
/// with no managed code in between that could call into libc. The one thing that could run
/// there is the GC poll the JIT puts after a suppressed call, and only while another thread is
/// suspending the runtime for a collection; the serving loops allocate nothing, so after start-up
/// no collection is ever pending (README.md: measured). The blocking calls use SetLastError,
/// which the stub captures before its transition back.</para>
/// </remarks>
internal static unsafe partial class Libc
{
    public const int AF_INET = 2;
    public const int AF_INET6 = 10;
    public const int SOCK_STREAM = 1;
    public const int SOCK_NONBLOCK = 0x800;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int SOL_SOCKET = 1;
    public const int SO_REUSEADDR = 2;
    public const int SO_ERROR = 4;
    public const int IPPROTO_TCP = 6;
    public const int TCP_NODELAY = 1;
    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_NOSIGNAL = 0x4000;
    public const int O_RDONLY = 0;
    public const int O_CLOEXEC = 0x80000;
    public const int EFD_NONBLOCK = 0x800;
    public const int EFD_CLOEXEC = 0x80000;
    public const int RLIMIT_NOFILE = 7;

    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const uint EPOLLIN = 0x001;
    public const uint EPOLLOUT = 0x004;
    public const uint EPOLLERR = 0x008;
    public const uint EPOLLHUP = 0x010;
    public const uint EPOLLRDHUP = 0x2000;
    public const uint EPOLLEXCLUSIVE = 1u << 28;
    public const uint EPOLLET = 1u << 31;

    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EPIPE = 32;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int EINPROGRESS = 115;
    public const int ENOBUFS = 105;
    public const int ECONNABORTED = 103;
    public const int ECONNRESET = 104;
    public const int ETIMEDOUT = 110;
    public const int ECONNREFUSED = 111;
    public const int EHOSTUNREACH = 113;
    public const int ENETUNREACH = 101;
    public const int EADDRNOTAVAIL = 99;

    /// <summary>errno as the last libc call left it (glibc's thread-local errno, read without a call into the runtime).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Errno() => Marshal.GetLastSystemError();

    /// <summary>The errno a SetLastError stub captured.</summary>
    public static int LastError() => Marshal.GetLastPInvokeError();

    /// <summary>strerror's text, e.g. "Connection refused".</summary>
    public static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    // --- never block here: no GC transition ---

    [LibraryImport("libc"), SuppressGCTransition]
    public static partial nint recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc"), SuppressGCTransition]
    public static partial nint send(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc"), SuppressGCTransition]
    public static partial int accept4(int fd, byte* address, uint* length, int flags);

    [LibraryImport("libc"), SuppressGCTransition]
    public static partial int epoll_ctl(int epfd, int op, int fd, byte* eventOrNull);

    [LibraryImport("libc"), SuppressGCTransition]
    public static partial int close(int fd);

    // --- may block, or run once at start: an ordinary transition ---

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_wait(int epfd, byte* events, int maxEvents, int timeoutMs);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_pwait2(int epfd, byte* events, int maxEvents, Timespec* timeout, void* sigmask);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int eventfd(uint initial, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial nint write(int fd, void* buffer, nuint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int bind(int fd, byte* address, uint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int listen(int fd, int backlog);

    /// <summary>Non-blocking: returns at once with EINPROGRESS.</summary>
    [LibraryImport("libc", SetLastError = true)]
    public static partial int connect(int fd, byte* address, uint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setsockopt(int fd, int level, int name, void* value, uint length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getsockopt(int fd, int level, int name, void* value, uint* length);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getsockname(int fd, byte* address, uint* length);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int dup2(int fd, int to);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int getrlimit(int resource, RLimit* limit);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int setrlimit(int resource, RLimit* limit);

    /// <summary>signal(2); <see cref="SIG_DFL"/> only.</summary>
    [LibraryImport("libc", EntryPoint = "signal")]
    public static partial nint set_signal(int signal, nint handler);

    public const int SIGINT = 2;
    public const nint SIG_DFL = 0;

    [LibraryImport("libc", SetLastError = true)]
    public static partial int sched_getaffinity(int pid, nuint size, byte* mask);

    [StructLayout(LayoutKind.Sequential)]
    public struct RLimit
    {
        public ulong Current;
        public ulong Max;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>One 1 for a setsockopt.</summary>
    public static void SetOption(int fd, int level, int name)
    {
        int on = 1;
        setsockopt(fd, level, name, &on, sizeof(int));
    }
}

/// <summary>
/// struct epoll_event, read and written in place in native memory: 12 bytes on x86_64, where the
/// kernel's header packs it (events at 0, data at 4), 16 on the other 64-bit ABIs (data at 8).
/// </summary>
internal static unsafe class EpollEvent
{
    public static readonly int Size = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    private static readonly int DataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Events(byte* events, int i) => *(uint*)(events + i * Size);

    /// <summary>The low 32 bits of epoll_data: data.fd or data.u32 (both 64-bit ABIs are little-endian here).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Data(byte* events, int i) => Unsafe.ReadUnaligned<int>(events + i * Size + DataOffset);

    /// <summary>epoll_ctl(ADD) with data.u64 = data.</summary>
    public static int Add(int epoll, int fd, uint events, uint data)
    {
        byte* ev = stackalloc byte[16];
        *(uint*)ev = events;
        Unsafe.WriteUnaligned(ev + DataOffset, (ulong)data);
        return Libc.epoll_ctl(epoll, Libc.EPOLL_CTL_ADD, fd, ev);
    }
}
