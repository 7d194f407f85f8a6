using Memif.Native;
using Memif.Protocol;
using Memif.SharedMemory;

namespace Memif;

/// <summary>
/// One connected memif interface: the control channel, the mapped regions and a TX and RX queue
/// per ring. The data path is lock-free because one thread drives the queues, and that thread
/// also calls <see cref="Poll"/> or <see cref="Wait"/> so a DISCONNECT from the peer is noticed.
/// The link goes down exactly once (<see cref="Close"/>), whoever brings it down and on whatever
/// thread: a peer's DISCONNECT or EOF, an impossible value a queue found in shared memory, or our
/// own <see cref="Disconnect"/>. From then on the queues do nothing, and the regions stay mapped
/// (as private zero pages) until nothing can point into them.
/// </summary>
public sealed unsafe class MemifConnection : IDisposable
{
    private readonly ControlChannel _control;
    private readonly Region[] _regions;
    private readonly List<int> _interruptFds;
    private readonly Action<MemifConnection>? _onClosed;
    private readonly Libc.PollFd[] _pollFds;
    private readonly LinkState _link;
    private int _closed;

    internal MemifConnection(
        MemifOptions options, ControlChannel control, Region[] regions, List<int> interruptFds, LinkState link,
        MemifTxQueue[] tx, MemifRxQueue[] rx, string peerName, string peerInterfaceName, Action<MemifConnection>? onClosed)
    {
        _link = link;
        link.Broken = reason => Close(reason, tellPeer: true);
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
    public bool IsConnected => _link.IsUp;
    /// <summary>Why the link went down: the peer's DISCONNECT reason, EOF, or our own complaint.</summary>
    public string? DisconnectReason { get; private set; }

    /// <summary>Tests play a misbehaving peer through this.</summary>
    internal ControlChannel Control => _control;

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
            Close("peer closed the control channel", tellPeer: false);
        else if (r.Length != MemifConstants.MessageSize)
            Close("Invalid message size", tellPeer: true);
        else if (r.Message!.Type == MessageType.Disconnect)
            Close($"peer disconnected: {r.Message.DisconnectReason}", tellPeer: false);
        else if (r.Message.Type is MessageType.None or > MessageType.Disconnect)
            Close("Unknown message type", tellPeer: true);
        else
            Close("Unexpected message", tellPeer: true); // the handshake is over: an ADD_REGION now would remap live memory
        return false;
    }

    /// <summary>Sends DISCONNECT with <paramref name="reason"/> and frees everything.</summary>
    public void Disconnect(string reason = "Device closed") => Close(reason, tellPeer: true);

    /// <summary>
    /// The one way down, run once: the queues stop first (so another thread's data path backs off),
    /// then the peer hears why, then every descriptor is closed and the regions retired rather than
    /// unmapped, since a queue or a span may still point into them.
    /// </summary>
    private void Close(string reason, bool tellPeer)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        DisconnectReason = reason;
        _link.MarkDown();
        if (tellPeer) _control.Send(Message.Disconnect(0, reason));
        _control.Dispose();
        foreach (var region in _regions) region.Retire();
        foreach (int fd in _interruptFds) Libc.close(fd);
        _interruptFds.Clear();
        _onClosed?.Invoke(this);
    }

    public void Dispose() => Disconnect();
}
