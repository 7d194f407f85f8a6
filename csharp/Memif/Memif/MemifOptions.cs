namespace Memif;

public enum MemifRole
{
    /// <summary>Listens on the socket and maps the memory the slave sends (DPDK: server).</summary>
    Master,
    /// <summary>Connects, allocates regions and rings (DPDK: client).</summary>
    Slave,
}

public enum MemifMode
{
    /// <summary>Consumers spin on the rings and mask interrupts so producers never make a syscall.</summary>
    Polling,
    /// <summary>Consumers sleep on the ring eventfds; producers kick after publishing.</summary>
    Interrupt,
}

/// <summary>Everything needed to open one memif interface, in either role.</summary>
public sealed record MemifOptions
{
    public MemifRole Role { get; init; } = MemifRole.Slave;

    /// <summary>Filesystem path, or '@name' for an abstract socket (DPDK's default kind).</summary>
    public required string SocketPath { get; init; }

    public uint InterfaceId { get; init; }

    /// <summary>Shared secret (at most 23 bytes); the master refuses slaves that do not present it.</summary>
    public string? Secret { get; init; }

    /// <summary>Queue pairs: the slave asks for this many rings each way; the master accepts at most this many.</summary>
    public int Queues { get; init; } = 1;

    /// <summary>log2 of ring slots (10 = 1024, as DPDK, VPP and libmemif default). At most 14.</summary>
    public int Log2RingSize { get; init; } = 10;

    /// <summary>Bytes per buffer; match the peer's (DPDK bsize, default 2048).</summary>
    public int BufferSize { get; init; } = 2048;

    /// <summary>Slave: 0 keeps rings and buffers in region 0 (DPDK layout); n spreads buffers over n more regions.</summary>
    public int BufferRegions { get; init; }

    public MemifMode Mode { get; init; } = MemifMode.Polling;

    /// <summary>Application name sent in HELLO / INIT.</summary>
    public string AppName { get; init; } = "csharp-memif";

    /// <summary>Interface name sent in CONNECT / CONNECTED.</summary>
    public string InterfaceName { get; init; } = "memif0";

    /// <summary>How long either side waits for each handshake message.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Filesystem sockets are created 0600 (owner only) unless this is turned off.</summary>
    public bool OwnerOnlySocket { get; init; } = true;

    public int RingSize => 1 << Log2RingSize;

    /// <summary>
    /// Throws ArgumentException (naming the value) for options no interface can be opened with;
    /// opening one checks the same. Public so a program can tell its user before it starts.
    /// </summary>
    public void Validate()
    {
        Native.UnixAddress.Parse(SocketPath);
        if (Log2RingSize is < 1 or > Protocol.MemifConstants.MaxLog2RingSize)
            throw new ArgumentException($"ring size must be 2^1..2^14, got 2^{Log2RingSize}");
        if (BufferSize is < 64 or > 65535)
            throw new ArgumentException($"buffer size must be 64..65535 bytes, got {BufferSize}");
        if (Queues is < 1 or > 255)
            throw new ArgumentException($"queues must be 1..255, got {Queues}");
        if (BufferRegions is < 0 or > 254)
            throw new ArgumentException($"buffer regions must be 0..254, got {BufferRegions}");
        if (Secret is { } s && System.Text.Encoding.UTF8.GetByteCount(s) > Protocol.MemifConstants.SecretSize - 1)
            throw new ArgumentException("secret must be at most 23 bytes");
    }
}
