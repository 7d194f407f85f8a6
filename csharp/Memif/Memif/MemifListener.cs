using Memif.Native;
using Memif.Protocol;
using Memif.SharedMemory;

namespace Memif;

/// <summary>
/// The master (DPDK: server) role: one listening socket serving one or more interface ids.
/// <see cref="Accept"/> runs each incoming handshake to the end; a slave that misbehaves gets
/// a DISCONNECT with a reason (DPDK's wording where DPDK has one), everything it sent is
/// closed, and the listener goes on waiting for the next slave.
/// </summary>
public sealed unsafe class MemifListener : IDisposable
{
    private readonly Dictionary<uint, MemifOptions> _interfaces;
    private readonly HashSet<uint> _connected = [];
    private readonly UnixAddress _address;
    private readonly int _maxQueues;
    private int _fd;

    private MemifListener(int fd, UnixAddress address, Dictionary<uint, MemifOptions> interfaces)
    {
        _fd = fd;
        _address = address;
        _interfaces = interfaces;
        _maxQueues = interfaces.Values.Max(i => i.Queues);
    }

    public string SocketPath => _address.Display;

    /// <summary>The reason the last slave was refused (for logs and tests).</summary>
    public string? LastRejection { get; private set; }

    /// <summary>Called with every refusal reason as it happens.</summary>
    public Action<string>? Rejected { get; set; }

    public static MemifListener Listen(MemifOptions options) => Listen(options.SocketPath, [options]);

    /// <summary>Binds one socket for several interfaces; the slave's INIT id picks which.</summary>
    public static MemifListener Listen(string socketPath, IEnumerable<MemifOptions> interfaces)
    {
        var byId = new Dictionary<uint, MemifOptions>();
        foreach (var i in interfaces)
        {
            i.Validate();
            if (!byId.TryAdd(i.InterfaceId, i with { Role = MemifRole.Master }))
                throw new ArgumentException($"interface id {i.InterfaceId} given twice for {socketPath}");
        }
        if (byId.Count == 0) throw new ArgumentException("a memif listener needs at least one interface");
        bool ownerOnly = byId.Values.All(i => i.OwnerOnlySocket);

        var address = UnixAddress.Parse(socketPath);
        if (address.FilesystemPath is { } path) RemoveStaleSocket(address, path);

        int fd = Libc.socket(Libc.AF_UNIX, Libc.SOCK_SEQPACKET | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, 0);
        if (fd < 0) throw new MemifException($"socket: {Libc.ErrorText(Libc.LastError)}");
        // On Linux the socket inode's mode becomes the file's mode at bind, so the file is never
        // visible with wider permissions; the chmod after bind is the portable belt to these braces.
        if (ownerOnly) Libc.fchmod(fd, 0x180 /* 0600 */);
        if (address.Bind(fd) != 0)
        {
            int errno = Libc.LastError;
            Libc.close(fd);
            throw new MemifException($"bind {socketPath}: {Libc.ErrorText(errno)}");
        }
        if (ownerOnly && address.FilesystemPath is { } p) Libc.chmod(p, 0x180);
        if (Libc.listen(fd, 64) != 0)
        {
            int errno = Libc.LastError;
            Libc.close(fd);
            throw new MemifException($"listen {socketPath}: {Libc.ErrorText(errno)}");
        }
        return new MemifListener(fd, address, byId);
    }

    /// <summary>A socket file nobody answers on is left over from a crash: remove it. One that answers is in use.</summary>
    private static void RemoveStaleSocket(UnixAddress address, string path)
    {
        if (!File.Exists(path)) return;
        // open() on a socket file fails with ENXIO: the portable way to tell it from a regular file.
        int file = Libc.open(path, Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (file >= 0 || Libc.LastError != Libc.ENXIO)
        {
            if (file >= 0) Libc.close(file);
            throw new MemifException($"{path} exists and is not a socket; refusing to replace it");
        }
        int probe = Libc.socket(Libc.AF_UNIX, Libc.SOCK_SEQPACKET | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, 0);
        int rc = address.Connect(probe);
        int errno = Libc.LastError;
        Libc.close(probe);
        if (rc == 0 || errno == Libc.EAGAIN) throw new MemifException($"{path} is in use by another memif master");
        if (errno == Libc.ECONNREFUSED) Libc.unlink(path);
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for a slave to connect and finish the handshake.
    /// Returns null on timeout or cancellation; refused slaves do not end the wait.
    /// </summary>
    public MemifConnection? Accept(TimeSpan timeout, CancellationToken cancel = default)
    {
        long deadline = timeout == Timeout.InfiniteTimeSpan ? long.MaxValue : Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (!cancel.IsCancellationRequested && _fd >= 0)
        {
            long left = deadline - Environment.TickCount64;
            if (left <= 0) return null;
            // Short slices so cancellation is noticed promptly.
            if (!ControlChannel.WaitReadable(_fd, (int)Math.Min(left, 100))) continue;
            int fd = Libc.accept4(_fd, null, null, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC);
            if (fd < 0) continue;
            var connection = Handshake(new ControlChannel(fd));
            if (connection is not null) return connection;
        }
        return null;
    }

    private sealed class Pending : IDisposable
    {
        public readonly List<Region> Regions = [];
        public readonly Dictionary<int, (Message Msg, int Fd)> S2M = [];
        public readonly Dictionary<int, (Message Msg, int Fd)> M2S = [];
        public readonly List<int> Fds = [];

        /// <summary>Releases what is still held; safe to call twice.</summary>
        public void Dispose()
        {
            foreach (var r in Regions) r.Dispose();
            foreach (int fd in Fds) Libc.close(fd);
            Regions.Clear();
            Fds.Clear();
        }
    }

    private MemifConnection? Handshake(ControlChannel control)
    {
        var first = _interfaces.Values.First();
        int maxRing = Math.Min(_maxQueues, MemifConstants.MaxRingsPerDirection) - 1;
        if (!control.Send(Message.Hello(first.AppName, MemifConstants.MaxRegions - 1, (ushort)maxRing, (ushort)maxRing, MemifConstants.MaxLog2RingSize)))
        {
            control.Dispose();
            return null;
        }

        var pending = new Pending();
        MemifOptions? iface = null;
        string? slaveName = null;
        int timeoutMs = (int)first.HandshakeTimeout.TotalMilliseconds;
        try
        {
            while (true)
            {
                var r = control.Receive(timeoutMs);
                if (r.Status == ReceiveStatus.Timeout) return Refuse(control, pending, "Handshake timeout");
                if (r.Status == ReceiveStatus.Closed) return Gone(control, pending, "slave closed the connection during the handshake");
                int fd = r.Fd;
                if (fd >= 0) pending.Fds.Add(fd); // owned by the handshake until it is handed to a ring
                var m = r.Message!;
                if (r.Length != MemifConstants.MessageSize) return Refuse(control, pending, "Invalid message size");
                if (r.TooManyFds) return Refuse(control, pending, "Too many file descriptors");
                if (m.Type is MessageType.None or > MessageType.Disconnect) return Refuse(control, pending, "Unknown message type");
                if (m.Type == MessageType.Disconnect) return Gone(control, pending, $"slave disconnected: {m.DisconnectReason}");
                if (iface is null && m.Type != MessageType.Init) return Refuse(control, pending, "Unexpected message");

                switch (m.Type)
                {
                    case MessageType.Init:
                        if (iface is not null) return Refuse(control, pending, "Unexpected message");
                        if (fd >= 0) return Refuse(control, pending, "Unexpected file descriptor");
                        if (m.InitVersion != MemifConstants.Version) return Refuse(control, pending, "Incompatible memif version");
                        if (!_interfaces.TryGetValue(m.InitId, out var found)) return Refuse(control, pending, "ID not found");
                        if (IsConnected(m.InitId)) return Refuse(control, pending, "Already connected");
                        if (m.InitMode != 0) return Refuse(control, pending, "Only ethernet mode supported");
                        if (SecretError(found.Secret, m.InitSecret) is { } secretError) return Refuse(control, pending, secretError);
                        iface = found;
                        slaveName = m.InitName;
                        break;

                    case MessageType.AddRegion:
                        if (fd < 0) return Refuse(control, pending, "Missing region fd");
                        if (m.RegionIndex != pending.Regions.Count || m.RegionIndex >= MemifConstants.MaxRegions)
                            return Refuse(control, pending, "Invalid region index");
                        pending.Fds.Remove(fd);
                        var region = Region.Attach(fd, m.RegionSize, out string? regionError);
                        if (regionError is not null) return Refuse(control, pending, regionError);
                        pending.Regions.Add(region);
                        break;

                    case MessageType.AddRing:
                        if (fd < 0) return Refuse(control, pending, "Missing interrupt fd");
                        if (RingError(m, iface!, pending) is { } ringError) return Refuse(control, pending, ringError);
                        // The eventfd came from the peer: make sure a kick can never block us.
                        int flags = Libc.fcntl(fd, Libc.F_GETFL, 0);
                        if (flags >= 0) Libc.fcntl(fd, Libc.F_SETFL, flags | Libc.O_NONBLOCK);
                        (m.RingIsS2M ? pending.S2M : pending.M2S)[m.RingIndex] = (m, fd);
                        break;

                    case MessageType.Connect:
                        if (fd >= 0) return Refuse(control, pending, "Unexpected file descriptor");
                        return Establish(control, iface!, slaveName!, m.InterfaceName, pending);

                    default:
                        return Refuse(control, pending, "Unexpected message");
                }
                if (!control.Send(Message.Create(MessageType.Ack))) return Gone(control, pending, "slave closed the connection during the handshake");
            }
        }
        finally
        {
            pending.Dispose(); // whatever a refusal or an exception left; empty once handed over
        }
    }

    private bool IsConnected(uint id)
    {
        lock (_connected) return _connected.Contains(id);
    }

    /// <summary>DPDK's rule (strncmp over the 24-byte field): compared as C strings, up to the first NUL.</summary>
    private static string? SecretError(string? expected, ReadOnlySpan<byte> offered)
    {
        if (string.IsNullOrEmpty(expected)) return null;
        int nul = offered.IndexOf((byte)0);
        var given = nul < 0 ? offered : offered[..nul];
        if (given.IsEmpty) return "Secret required";
        return given.SequenceEqual(System.Text.Encoding.UTF8.GetBytes(expected)) ? null : "Incorrect secret";
    }

    private static string? RingError(Message m, MemifOptions iface, Pending pending)
    {
        if (m.RingPrivateHeaderSize != 0) return "Private headers not supported";
        if (m.RingLog2Size is < 1 or > MemifConstants.MaxLog2RingSize) return "Invalid ring size";
        var existing = m.RingIsS2M ? pending.S2M : pending.M2S;
        if (m.RingIndex >= iface.Queues || existing.ContainsKey(m.RingIndex)) return "Invalid ring index";
        if (m.RingRegion >= pending.Regions.Count) return "Invalid ring region";
        if (m.RingOffset % 8 != 0 || !pending.Regions[m.RingRegion].Contains(m.RingOffset, Ring.BytesFor(m.RingLog2Size)))
            return "Invalid ring offset";
        return null;
    }

    private MemifConnection? Establish(ControlChannel control, MemifOptions iface, string slaveName, string slaveInterface, Pending pending)
    {
        int s2m = pending.S2M.Count, m2s = pending.M2S.Count;
        if (s2m == 0 || m2s == 0) return Refuse(control, pending, "No rings");
        // Indices are unique and below the queue count; contiguity means 0..n-1 are all there.
        if (pending.S2M.Keys.Max() != s2m - 1 || pending.M2S.Keys.Max() != m2s - 1) return Refuse(control, pending, "Missing ring");

        var regions = pending.Regions.ToArray();
        Ring Build((Message Msg, int Fd) r, RingDirection dir) =>
            new(regions[r.Msg.RingRegion].Base + r.Msg.RingOffset, r.Msg.RingLog2Size, dir, r.Msg.RingIndex, r.Fd);
        var s2mRings = Enumerable.Range(0, s2m).Select(i => Build(pending.S2M[i], RingDirection.S2M)).ToArray();
        var m2sRings = Enumerable.Range(0, m2s).Select(i => Build(pending.M2S[i], RingDirection.M2S)).ToArray();
        if (s2mRings.Concat(m2sRings).Any(r => r.Cookie != MemifConstants.RingCookie)) return Refuse(control, pending, "Wrong ring cookie");

        // Every index starts at 0, whatever the slave left there (DPDK and libmemif reset them at connect too).
        foreach (var ring in s2mRings.Concat(m2sRings)) (ring.Head, ring.Tail) = ((ushort)0, (ushort)0);
        // We consume S2M: in polling mode ask the slave not to kick us.
        foreach (var ring in s2mRings) ring.Flags = iface.Mode == MemifMode.Polling ? MemifConstants.RingFlagMaskInt : (ushort)0;
        var link = new LinkState();
        var rx = s2mRings.Select(r => new MemifRxQueue(r, slave: false, regions, iface.BufferSize, 0, 0, link)).ToArray();
        var tx = m2sRings.Select(r => new MemifTxQueue(r, slave: false, regions, iface.BufferSize, 0, 0, link)).ToArray();

        if (!control.Send(Message.Connect(MessageType.Connected, iface.InterfaceName))) return Gone(control, pending, "slave closed the connection before CONNECTED");

        var fds = pending.Fds.ToList();
        pending.Fds.Clear();
        pending.Regions.Clear(); // now owned by the connection
        lock (_connected) _connected.Add(iface.InterfaceId);
        var effective = iface with { Queues = Math.Min(s2m, m2s) };
        // The connection may be closed on another thread than the one accepting: lock the id set.
        return new MemifConnection(effective, control, regions, fds, link, tx, rx, slaveName, slaveInterface,
            c => { lock (_connected) _connected.Remove(c.InterfaceId); });
    }

    private MemifConnection? Refuse(ControlChannel control, Pending pending, string reason)
    {
        control.Disconnect(reason);
        return Gone(control, pending, reason);
    }

    /// <summary>Ends a handshake; what the slave sent is released before anyone hears of it.</summary>
    private MemifConnection? Gone(ControlChannel control, Pending pending, string reason)
    {
        pending.Dispose();
        control.Dispose();
        LastRejection = reason;
        Rejected?.Invoke(reason);
        return null;
    }

    public void Dispose()
    {
        if (_fd < 0) return;
        Libc.CloseQuietly(ref _fd);
        if (_address.FilesystemPath is { } path) Libc.unlink(path);
    }
}
