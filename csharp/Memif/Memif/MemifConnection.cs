using Memif.Native;
using Memif.Protocol;
using Memif.SharedMemory;

namespace Memif;

/// <summary>
/// One connected memif interface: the control channel, the mapped regions and a TX and RX queue
/// per ring. A connection belongs to one thread: the data path is lock-free because only that
/// thread touches the queues, and it also calls <see cref="Poll"/> or <see cref="Wait"/> so a
/// DISCONNECT from the peer is noticed. After a disconnect the queues must not be used again.
/// </summary>
public sealed unsafe class MemifConnection : IDisposable
{
    private readonly ControlChannel _control;
    private readonly Region[] _regions;
    private readonly List<int> _interruptFds;
    private readonly Action<MemifConnection>? _onClosed;
    private readonly Libc.PollFd[] _pollFds;
    private bool _disposed;

    internal MemifConnection(
        MemifOptions options, ControlChannel control, Region[] regions, List<int> interruptFds,
        MemifTxQueue[] tx, MemifRxQueue[] rx, string peerName, string peerInterfaceName, Action<MemifConnection>? onClosed)
    {
        Options = options;
        _control = control;
        _regions = regions;
        _interruptFds = interruptFds;
        Tx = tx;
        Rx = rx;
        PeerName = peerName;
        PeerInterfaceName = peerInterfaceName;
        _onClosed = onClosed;
        // poll set: the control socket first, then (interrupt mode) every RX ring's eventfd.
        int n = 1 + (options.Mode == MemifMode.Interrupt ? rx.Length : 0);
        _pollFds = new Libc.PollFd[n];
        _pollFds[0] = new Libc.PollFd { Fd = control.Fd, Events = Libc.POLLIN };
        for (int i = 1; i < n; i++) _pollFds[i] = new Libc.PollFd { Fd = rx[i - 1].InterruptFd, Events = Libc.POLLIN };
    }

    public MemifOptions Options { get; }
    public MemifRole Role => Options.Role;
    public uint InterfaceId => Options.InterfaceId;
    public MemifTxQueue[] Tx { get; }
    public MemifRxQueue[] Rx { get; }
    public IReadOnlyList<Region> Regions => _regions;
    /// <summary>The peer's application name (HELLO or INIT).</summary>
    public string PeerName { get; }
    /// <summary>The peer's interface name (CONNECT or CONNECTED).</summary>
    public string PeerInterfaceName { get; }
    public bool IsConnected => !_disposed && DisconnectReason is null;
    /// <summary>Why the link went down: the peer's DISCONNECT reason, EOF, or our own complaint.</summary>
    public string? DisconnectReason { get; private set; }

    /// <summary>Handles any pending control message without blocking. Returns <see cref="IsConnected"/>.</summary>
    public bool Poll()
    {
        if (!IsConnected) return false;
        while (true)
        {
            var r = _control.Receive(0);
            if (r.Status == ReceiveStatus.Timeout) return true;
            if (!HandleControl(r)) return false;
        }
    }

    /// <summary>
    /// Sleeps until something happens: a control message, or (interrupt mode) a kick on any RX
    /// ring, or the timeout (-1 = forever). Eventfds are reset here; callers then drain their
    /// queues, which cannot lose a wakeup because the producer kicks after every publish.
    /// Returns <see cref="IsConnected"/>.
    /// </summary>
    public bool Wait(int timeoutMs)
    {
        if (!IsConnected) return false;
        fixed (Libc.PollFd* fds = _pollFds)
        {
            for (int i = 0; i < _pollFds.Length; i++) fds[i].Revents = 0;
            int rc = Libc.poll(fds, (nuint)_pollFds.Length, timeoutMs);
            if (rc <= 0) return true;
            for (int i = 1; i < _pollFds.Length; i++)
                if ((fds[i].Revents & Libc.POLLIN) != 0) Libc.DrainEventFd(fds[i].Fd);
            if (fds[0].Revents != 0) return Poll();
        }
        return true;
    }

    private bool HandleControl(Received r)
    {
        if (r.Fd >= 0) Libc.close(r.Fd); // nothing after CONNECT carries a descriptor
        if (r.Status == ReceiveStatus.Closed)
        {
            Down("peer closed the control channel");
            return false;
        }
        var m = r.Message!;
        if (r.Length != MemifConstants.MessageSize) return Refuse("Invalid message size");
        if (m.Type == MessageType.Disconnect)
        {
            Down($"peer disconnected: {m.DisconnectReason}");
            return false;
        }
        if (m.Type is MessageType.None or > MessageType.Disconnect) return Refuse("Unknown message type");
        return Refuse("Unexpected message");
    }

    private bool Refuse(string reason)
    {
        _control.Send(Message.Disconnect(0, reason));
        Down(reason);
        return false;
    }

    private void Down(string reason)
    {
        DisconnectReason ??= reason;
        Release();
    }

    /// <summary>Sends DISCONNECT with <paramref name="reason"/> and frees everything.</summary>
    public void Disconnect(string reason = "Device closed")
    {
        if (IsConnected) _control.Send(Message.Disconnect(0, reason));
        DisconnectReason ??= reason;
        Release();
    }

    private void Release()
    {
        if (_disposed) return;
        _disposed = true;
        _control.Dispose();
        foreach (var region in _regions) region.Dispose();
        foreach (int fd in _interruptFds) Libc.close(fd);
        _interruptFds.Clear();
        _onClosed?.Invoke(this);
    }

    public void Dispose() => Disconnect();
}
