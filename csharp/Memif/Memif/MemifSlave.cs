using Memif.Native;
using Memif.Protocol;
using Memif.SharedMemory;

namespace Memif;

/// <summary>
/// The slave (DPDK: client) role: connects to the master's socket, allocates every region, ring
/// and eventfd, and walks the handshake in lockstep (one message, one ACK), which works with
/// DPDK, VPP and libmemif masters alike.
/// </summary>
public static unsafe class MemifSlave
{
    /// <summary>
    /// Connects, retrying every 50 ms while the master's socket does not exist or refuses, until
    /// <paramref name="timeout"/>. A master that answers and then refuses (wrong secret, unknown
    /// id, ...) is not retried: that throws <see cref="MemifException"/> with its reason.
    /// </summary>
    public static MemifConnection Connect(MemifOptions options, TimeSpan timeout, CancellationToken cancel = default)
    {
        options.Validate();
        var address = UnixAddress.Parse(options.SocketPath);
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            int fd = Libc.socket(Libc.AF_UNIX, Libc.SOCK_SEQPACKET | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, 0);
            if (fd < 0) throw new MemifException($"socket: {Libc.ErrorText(Libc.LastError)}");
            if (address.Connect(fd) == 0) return Handshake(options, new ControlChannel(fd));
            int errno = Libc.LastError;
            Libc.close(fd);
            if (errno is not (Libc.ENOENT or Libc.ECONNREFUSED or Libc.EAGAIN))
                throw new MemifException($"connect {options.SocketPath}: {Libc.ErrorText(errno)}");
            if (Environment.TickCount64 >= deadline)
                throw new TimeoutException($"no memif master on {options.SocketPath} after {timeout.TotalSeconds:0.#} s ({Libc.ErrorText(errno)})");
            cancel.WaitHandle.WaitOne(50);
        }
    }

    private static MemifConnection Handshake(MemifOptions o, ControlChannel control)
    {
        int timeoutMs = (int)o.HandshakeTimeout.TotalMilliseconds;
        var regions = new List<Region>();
        var eventFds = new List<int>();
        bool done = false;
        try
        {
            var hello = Expect(control, MessageType.Hello, timeoutMs);
            if (hello.HelloMinVersion > MemifConstants.Version || hello.HelloMaxVersion < MemifConstants.Version)
                throw Refuse(control, "Incompatible memif version");

            int s2m = Math.Min(o.Queues, hello.HelloMaxS2M + 1);
            int m2s = Math.Min(o.Queues, hello.HelloMaxM2S + 1);
            int log2 = Math.Max(1, Math.Min(o.Log2RingSize, (int)hello.HelloMaxLog2RingSize));
            int ringCount = s2m + m2s;
            int slots = 1 << log2;
            ulong ringBytes = Ring.BytesFor(log2);
            ulong ringArea = (ulong)ringCount * ringBytes;
            ulong buffersPerRing = (ulong)slots * (ulong)o.BufferSize;
            int bufferRegions = o.BufferRegions;
            if (bufferRegions > hello.HelloMaxRegion)
                throw Refuse(control, "Too many regions for this master");

            // Layout. Without buffer regions: DPDK's classic single region (all rings, then every
            // ring's buffers). With n buffer regions: rings alone in region 0, ring k's buffers in
            // region 1 + k % n (libmemif keeps buffers apart from rings the same way).
            var slotRegion = new ushort[ringCount];
            var slotOffset = new ulong[ringCount];
            if (bufferRegions == 0)
            {
                regions.Add(Region.Create($"memif-{o.InterfaceId}-r0", ringArea + (ulong)ringCount * buffersPerRing));
                for (int k = 0; k < ringCount; k++) slotOffset[k] = ringArea + (ulong)k * buffersPerRing;
            }
            else
            {
                regions.Add(Region.Create($"memif-{o.InterfaceId}-r0", ringArea));
                for (int r = 0; r < bufferRegions; r++)
                {
                    int ringsInRegion = (ringCount - r + bufferRegions - 1) / bufferRegions;
                    regions.Add(Region.Create($"memif-{o.InterfaceId}-r{r + 1}", Math.Max(1UL, (ulong)ringsInRegion) * buffersPerRing));
                }
                for (int k = 0; k < ringCount; k++)
                {
                    slotRegion[k] = (ushort)(1 + k % bufferRegions);
                    slotOffset[k] = (ulong)(k / bufferRegions) * buffersPerRing;
                }
            }
            foreach (var region in regions)
                if (region.Size > uint.MaxValue + 1UL)
                    throw Refuse(control, "Region larger than 4 GiB");

            // Rings: S2M 0..s2m-1 then M2S 0..m2s-1, at the start of region 0.
            var rings = new Ring[ringCount];
            for (int k = 0; k < ringCount; k++)
            {
                int efd = Libc.eventfd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);
                if (efd < 0) throw new MemifException($"eventfd: {Libc.ErrorText(Libc.LastError)}");
                eventFds.Add(efd);
                bool isS2M = k < s2m;
                rings[k] = new Ring(regions[0].Base + (ulong)k * ringBytes, log2,
                    isS2M ? RingDirection.S2M : RingDirection.M2S, isS2M ? k : k - s2m, efd);
                // We consume M2S: mask its interrupts when we poll. S2M flags belong to the master.
                rings[k].Initialise(maskInterrupts: !isS2M && o.Mode == MemifMode.Polling);
            }

            Step(control, Message.Init(o.InterfaceId, o.Secret, o.AppName), -1, MessageType.Ack, timeoutMs);
            for (int r = 0; r < regions.Count; r++)
                Step(control, Message.AddRegion((ushort)r, regions[r].Size), regions[r].Fd, MessageType.Ack, timeoutMs);
            for (int k = 0; k < ringCount; k++)
                Step(control, Message.AddRing(rings[k].Direction == RingDirection.S2M, (ushort)rings[k].Index, 0,
                    (uint)((ulong)k * ringBytes), (byte)log2), rings[k].InterruptFd, MessageType.Ack, timeoutMs);
            var connected = Step(control, Message.Connect(MessageType.Connect, o.InterfaceName), -1, MessageType.Connected, timeoutMs);

            var regionArray = regions.ToArray();
            var link = new LinkState();
            var tx = new MemifTxQueue[s2m];
            var rx = new MemifRxQueue[m2s];
            for (int k = 0; k < ringCount; k++)
            {
                if (k < s2m)
                    tx[k] = new MemifTxQueue(rings[k], slave: true, regionArray, o.BufferSize, slotRegion[k], (uint)slotOffset[k], link);
                else
                {
                    rx[k - s2m] = new MemifRxQueue(rings[k], slave: true, regionArray, o.BufferSize, slotRegion[k], (uint)slotOffset[k], link);
                    rx[k - s2m].PostAll(); // the master may write only into buffers we posted
                }
            }
            var effective = o with { Queues = Math.Min(s2m, m2s), Log2RingSize = log2 };
            done = true;
            return new MemifConnection(effective, control, regionArray, eventFds, link, tx, rx, hello.HelloName, connected.InterfaceName, null);
        }
        finally
        {
            if (!done)
            {
                control.Dispose();
                foreach (var r in regions) r.Dispose();
                foreach (int fd in eventFds) Libc.close(fd);
            }
        }
    }

    private static Message Step(ControlChannel control, Message request, int fd, MessageType reply, int timeoutMs)
    {
        if (!control.Send(request, fd)) throw new MemifException($"memif master closed the connection before {request.Type}");
        return Expect(control, reply, timeoutMs);
    }

    /// <summary>Waits for one message of <paramref name="type"/>; anything else ends the handshake with a reason.</summary>
    private static Message Expect(ControlChannel control, MessageType type, int timeoutMs)
    {
        var r = control.Receive(timeoutMs);
        if (r.Fd >= 0) Libc.close(r.Fd);
        switch (r.Status)
        {
            case ReceiveStatus.Timeout: throw Refuse(control, $"Timeout waiting for {type}");
            case ReceiveStatus.Closed: throw new MemifException($"memif master closed the connection while we waited for {type}");
        }
        var m = r.Message!;
        if (r.Length != MemifConstants.MessageSize) throw Refuse(control, "Invalid message size");
        if (m.Type == MessageType.Disconnect) throw new MemifException($"memif master refused: {m.DisconnectReason}");
        if (m.Type is MessageType.None or > MessageType.Disconnect) throw Refuse(control, "Unknown message type");
        if (m.Type != type) throw Refuse(control, "Unexpected message");
        if (r.Fd >= 0) throw Refuse(control, "Unexpected file descriptor");
        return m;
    }

    private static MemifException Refuse(ControlChannel control, string reason)
    {
        control.Disconnect(reason);
        return new MemifException($"memif handshake failed: {reason}");
    }
}
