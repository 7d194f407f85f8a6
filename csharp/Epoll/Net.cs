using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Numerics;

namespace Bench.Epoll;

/// <summary>A socket address as the kernel takes it (sockaddr_in or sockaddr_in6), cpp/common/net.hpp's Endpoint.</summary>
internal unsafe struct Endpoint
{
    private SockaddrBytes _address; // sizeof(sockaddr_in6), inline
    public uint Length;

    [System.Runtime.CompilerServices.InlineArray(28)]
    private struct SockaddrBytes
    {
        private byte _first;
    }

    public readonly int Family => Length == 0 ? 0 : BinaryPrimitives.ReadUInt16LittleEndian(_address);

    public static Endpoint From(IPAddress address, int port)
    {
        var endpoint = new Endpoint();
        Span<byte> bytes = endpoint._address;
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes, Libc.AF_INET6);
            BinaryPrimitives.WriteUInt16BigEndian(bytes[2..], (ushort)port);
            address.TryWriteBytes(bytes[8..24], out _);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes[24..], (uint)address.ScopeId);
            endpoint.Length = 28;
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(bytes, Libc.AF_INET);
            BinaryPrimitives.WriteUInt16BigEndian(bytes[2..], (ushort)port);
            address.TryWriteBytes(bytes[4..8], out _);
            endpoint.Length = 16;
        }
        return endpoint;
    }

    /// <summary>A numeric or named host, resolved the way getaddrinfo orders it (the first address); throws ArgumentException with a readable reason.</summary>
    public static Endpoint Resolve(string host, int port)
    {
        if (IPAddress.TryParse(host, out var literal)) return From(literal, port);
        try
        {
            var addresses = Dns.GetHostAddresses(host);
            var first = addresses.FirstOrDefault(a => a.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
                ?? throw new ArgumentException($"cannot resolve host '{host}': no IPv4 or IPv6 address");
            return From(first, port);
        }
        catch (SocketException e)
        {
            throw new ArgumentException($"cannot resolve host '{host}': {e.Message}");
        }
    }

    /// <summary>The address a bound socket really has (the kernel's port when 0 was asked for).</summary>
    public static Endpoint Local(int fd)
    {
        var endpoint = new Endpoint();
        uint length = 28;
        fixed (byte* address = (Span<byte>)endpoint._address)
            if (Libc.getsockname(fd, address, &length) != 0) throw Failure("getsockname", Libc.LastError());
        endpoint.Length = length;
        return endpoint;
    }

    /// <summary>"127.0.0.1:40123" or "[::1]:40123", as the ready line wants it.</summary>
    public override readonly string ToString()
    {
        ReadOnlySpan<byte> bytes = _address;
        var port = BinaryPrimitives.ReadUInt16BigEndian(bytes[2..]);
        return Family == Libc.AF_INET6
            ? $"[{new IPAddress(bytes[8..24], BinaryPrimitives.ReadUInt32LittleEndian(bytes[24..]))}]:{port}"
            : $"{new IPAddress(bytes[4..8])}:{port}";
    }

    /// <summary>Copies the sockaddr (Length bytes) to memory that does not move, for bind and connect.</summary>
    public readonly void CopyTo(byte* destination) => ((ReadOnlySpan<byte>)_address)[..(int)Length].CopyTo(new Span<byte>(destination, (int)Length));

    internal static SystemFailure Failure(string what, int errno) => new($"{what}: {Libc.ErrorText(errno)}");
}

/// <summary>A system call failed where the program cannot go on (set-up: socket, bind, epoll_create1).</summary>
internal sealed class SystemFailure(string message) : Exception(message);

/// <summary>cpp/common/net.cpp's listen_tcp and cpp/common/system.cpp, the process-level pieces both sides need.</summary>
internal static unsafe class Net
{
    /// <summary>
    /// A non-blocking listening TCP socket whose accepted sockets have TCP_NODELAY already (Linux
    /// accepted sockets inherit it from their listener: one setsockopt here instead of one per
    /// connection), with the largest backlog the kernel allows. Throws SystemFailure naming what failed.
    /// </summary>
    public static int Listen(in Endpoint endpoint)
    {
        int fd = Libc.socket(endpoint.Family, Libc.SOCK_STREAM | Libc.SOCK_CLOEXEC | Libc.SOCK_NONBLOCK, 0);
        if (fd < 0) throw Endpoint.Failure("socket", Libc.LastError());
        // A restarted server must not wait out TIME_WAIT connections of the previous run.
        Libc.SetOption(fd, Libc.SOL_SOCKET, Libc.SO_REUSEADDR);
        byte* address = stackalloc byte[28];
        endpoint.CopyTo(address);
        if (Libc.bind(fd, address, endpoint.Length) != 0)
        {
            var errno = Libc.LastError();
            Libc.close(fd);
            throw Endpoint.Failure($"bind {endpoint}", errno);
        }
        Libc.SetOption(fd, Libc.IPPROTO_TCP, Libc.TCP_NODELAY);
        // A 10k burst arrives faster than any accept loop drains it; ask for the most (the kernel
        // clamps to net.core.somaxconn) so fewer SYNs are dropped into the 1 s retransmit.
        if (Libc.listen(fd, 65535) != 0)
        {
            var errno = Libc.LastError();
            Libc.close(fd);
            throw Endpoint.Failure($"listen {endpoint}", errno);
        }
        return fd;
    }

    /// <summary>
    /// CPUs in this process's affinity mask (what taskset allowed), at least 1: sched_getaffinity,
    /// as cpp-epoll counts them. (Environment.ProcessorCount follows the mask too, but also a
    /// cgroup CPU quota, which cpp-epoll does not read.)
    /// </summary>
    public static int AllowedCpuCount()
    {
        const int Bytes = 1024 / 8; // cpu_set_t
        byte* mask = stackalloc byte[Bytes];
        new Span<byte>(mask, Bytes).Clear();
        if (Libc.sched_getaffinity(0, Bytes, mask) != 0) return 1;
        int count = 0;
        for (int i = 0; i < Bytes; i += 8) count += BitOperations.PopCount(*(ulong*)(mask + i));
        return count > 0 ? count : 1;
    }

    /// <summary>
    /// Raises the soft RLIMIT_NOFILE towards the hard limit when it is below <paramref name="needed"/>
    /// (0: as high as allowed). Says on stderr when even the hard limit is too low. Returns the soft
    /// limit in force afterwards. (The .NET host raises the soft limit to the hard one at start
    /// already; this is the contract's step, done as the other languages do it.)
    /// </summary>
    public static ulong RaiseFileLimit(ulong needed, string program)
    {
        Libc.RLimit limit;
        if (Libc.getrlimit(Libc.RLIMIT_NOFILE, &limit) != 0) return 0;
        if (needed == 0 || limit.Current < needed)
        {
            var raised = limit with { Current = limit.Max };
            if (Libc.setrlimit(Libc.RLIMIT_NOFILE, &raised) == 0) limit = raised;
        }
        if (needed != 0 && limit.Current < needed)
            Console.Error.WriteLine($"{program}: RLIMIT_NOFILE is {limit.Current} (hard limit) but about {needed} descriptors are needed; " +
                                    "raise it with `ulimit -Hn` as root or in /etc/security/limits.conf");
        return limit.Current;
    }

    /// <summary>
    /// Grows this process's descriptor table to hold <paramref name="count"/> descriptors (capped by
    /// the soft limit and 2^20), as cpp's reserve_descriptors does: the kernel grows the table by
    /// doubling, and in a multi-threaded process each growth waits for an RCU grace period
    /// (milliseconds), which would otherwise land in the middle of a burst.
    /// </summary>
    public static void ReserveDescriptors(ulong count)
    {
        Libc.RLimit limit;
        if (Libc.getrlimit(Libc.RLIMIT_NOFILE, &limit) != 0) return;
        var cap = Math.Min(Math.Min(count, limit.Current), 1UL << 20);
        if (cap < 2) return;
        int probe = Libc.open("/dev/null", Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (probe < 0) return;
        int top = (int)(cap - 1);
        if (Libc.dup2(probe, top) == top) Libc.close(top);
        Libc.close(probe);
    }
}

/// <summary>Monotonic nanoseconds, the only clock latencies and wall times are taken from (cpp's now_ns).</summary>
internal static class Clock
{
    // Stopwatch is clock_gettime(CLOCK_MONOTONIC) in nanoseconds on Linux; the scale is for anywhere else.
    private static readonly bool Nanoseconds = System.Diagnostics.Stopwatch.Frequency == 1_000_000_000;
    private static readonly double Scale = 1e9 / System.Diagnostics.Stopwatch.Frequency;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    public static long NowNs() => Nanoseconds ? System.Diagnostics.Stopwatch.GetTimestamp() : (long)(System.Diagnostics.Stopwatch.GetTimestamp() * Scale);
}
