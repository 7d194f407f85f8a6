using System.Runtime.InteropServices;
using Memif.Native;
using Memif.Protocol;
using Memif.SharedMemory;

namespace Fuzz.Targets;

/// <summary>One datagram a hostile memif peer sends, and the descriptors riding along with it.</summary>
readonly record struct Datagram(byte[] Bytes, bool WithRegion = false, bool WithEventFd = false)
{
    // A control byte per record: bit 0 attaches the peer's region memfd, bit 1 an eventfd;
    // bit 7 means a length byte follows (any size), else the record is one 128-byte message.
    private const byte RegionBit = 1, EventFdBit = 2, LengthBit = 0x80;

    /// <summary>
    /// More than this many would fill the peer's socket buffer (or the replies would fill ours)
    /// and the exchange would end on a full buffer instead of on what the bytes say.
    /// </summary>
    public const int MaxPerInput = 64;

    /// <summary>Reads the input as control-byte-prefixed records; a record cut short by the end of the input is sent as it is.</summary>
    public static List<Datagram> Parse(ReadOnlySpan<byte> input)
    {
        var datagrams = new List<Datagram>();
        var pos = 0;
        while (pos < input.Length && datagrams.Count < MaxPerInput)
        {
            var control = input[pos++];
            var length = MemifConstants.MessageSize;
            if ((control & LengthBit) != 0 && pos < input.Length) length = input[pos++];
            var bytes = input.Slice(pos, Math.Min(length, input.Length - pos)).ToArray();
            pos += bytes.Length;
            datagrams.Add(new Datagram(bytes, (control & RegionBit) != 0, (control & EventFdBit) != 0));
        }
        return datagrams;
    }

    /// <summary>The input that <see cref="Parse"/> reads back as these messages (for seeds).</summary>
    public static byte[] Encode(params Datagram[] datagrams) => datagrams.SelectMany(d =>
    {
        var control = (byte)((d.WithRegion ? RegionBit : 0) | (d.WithEventFd ? EventFdBit : 0));
        return d.Bytes.Length == MemifConstants.MessageSize
            ? (byte[])[control, .. d.Bytes]
            : [(byte)(control | LengthBit), checked((byte)d.Bytes.Length), .. d.Bytes];
    }).ToArray();

    public static Datagram Of(Message m, bool withRegion = false, bool withEventFd = false) => new(m.Bytes, withRegion, withEventFd);
}

/// <summary>
/// The descriptors a hostile peer passes: a 64 KiB memfd laid out as a well-behaved slave would
/// (rings of 2^6 slots at 0, 2048, 4096 and 6144, cookies set), and an eventfd. Kept for the
/// whole process and reset before each input, since whoever maps it may have written to it.
/// </summary>
sealed unsafe class PeerMemory
{
    public const int Size = 64 * 1024, RingSpacing = 2048, Log2RingSize = 6, Rings = 4;

    public Region Region { get; } = Region.Create("fuzz-peer", Size);
    public int EventFd { get; } = Libc.eventfd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);

    public void Reset()
    {
        new Span<byte>(Region.Base, Size).Clear();
        for (var k = 0; k < Rings; k++)
            new Ring(Region.Base + k * RingSpacing, Log2RingSize, RingDirection.S2M, k, EventFd).Initialise(maskInterrupts: false);
    }
}

/// <summary>A raw memif control socket that sends whatever it is given, then stops sending.</summary>
sealed partial class RawPeer(ControlChannel channel) : IDisposable
{
    public static RawPeer Connect(string socketPath)
    {
        var fd = Libc.socket(Libc.AF_UNIX, Libc.SOCK_SEQPACKET | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, 0);
        if (fd < 0 || UnixAddress.Parse(socketPath).Connect(fd) != 0)
            throw new InvalidOperationException($"cannot connect to {socketPath}: {Libc.ErrorText(Libc.LastError)}");
        return new RawPeer(new ControlChannel(fd));
    }

    /// <summary>Accepts one connection on a listening socket, or throws when none comes within the timeout.</summary>
    public static unsafe RawPeer Accept(int listeningFd, int timeoutMs)
    {
        var fd = ControlChannel.WaitReadable(listeningFd, timeoutMs) ? Libc.accept4(listeningFd, null, null, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC) : -1;
        if (fd < 0) throw new InvalidOperationException($"no memif slave connected within {timeoutMs} ms");
        return new RawPeer(new ControlChannel(fd));
    }

    /// <summary>False when the socket would not take it (the other side has gone): the rest is not sent.</summary>
    public bool Send(Datagram d, PeerMemory memory)
    {
        int[] fds = [.. d.WithRegion ? [memory.Region.Fd] : Array.Empty<int>(), .. d.WithEventFd ? [memory.EventFd] : Array.Empty<int>()];
        return channel.SendRaw(d.Bytes, fds);
    }

    /// <summary>Half-closes: the other side reads every datagram sent, then end of file, and can still answer.</summary>
    public void EndSending() => shutdown(channel.Fd, ShutWrite);

    public void Dispose() => channel.Dispose();

    private const int ShutWrite = 1;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int shutdown(int fd, int how);
}

/// <summary>
/// This process's sockets, memfds and eventfds, what memif passes around: a refused peer must
/// leave none of them behind. (Files are left out: the runtime opens assemblies and /dev/urandom
/// the first time a path runs.)
/// </summary>
static class OpenDescriptors
{
    private static readonly string[] Kinds = ["socket:", "/memfd:", "anon_inode:[eventfd]"];

    /// <summary>Each such descriptor and what it is (its /proc/self/fd link).</summary>
    public static Dictionary<string, string> Snapshot() => Directory.GetFiles("/proc/self/fd")
        .Select(fd => (Fd: Path.GetFileName(fd), Link: new FileInfo(fd).LinkTarget ?? ""))
        .Where(fd => Kinds.Any(fd.Link.StartsWith))
        .ToDictionary(fd => fd.Fd, fd => fd.Link);

    public static void Expect(Dictionary<string, string> before, string when)
    {
        var added = Snapshot().Where(fd => !before.ContainsKey(fd.Key)).ToList();
        if (added.Count > 0)
            throw new InvariantException($"descriptors left open {when}: {string.Join(", ", added.Select(fd => $"{fd.Key} -> {fd.Value}"))}");
    }
}
