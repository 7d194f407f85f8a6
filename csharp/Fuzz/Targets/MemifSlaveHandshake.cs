using Memif;
using Memif.Native;
using Memif.Protocol;

namespace Fuzz.Targets;

/// <summary>
/// The slave's side of the handshake (<see cref="MemifSlave.Connect"/>: HELLO's limits, each
/// ACK, CONNECTED, then the connected link's control handling) against a master that accepts,
/// sends the input's datagrams (<see cref="Datagram.Parse"/>) and stops. A refusal is a
/// <see cref="MemifException"/>; anything else, and a descriptor left open, is a crash.
/// </summary>
sealed unsafe class MemifSlaveHandshake() : FuzzTarget("memif-slave-handshake", "MemifSlave.Connect, the master sending the input's datagrams")
{
    private static readonly string SocketPath = $"@fuzz-memif-slave-{Environment.ProcessId}";

    // Two queue pairs and one buffer region beside the rings, so HELLO's limits all matter.
    private static readonly MemifOptions Slave = new()
    {
        SocketPath = SocketPath, Queues = 2, Log2RingSize = 4, BufferSize = 64, BufferRegions = 1,
    };

    private readonly Lazy<(int ListeningFd, PeerMemory Memory)> _setup = new(() => (Listen(), new PeerMemory()));

    private static int Listen()
    {
        var fd = Libc.socket(Libc.AF_UNIX, Libc.SOCK_SEQPACKET | Libc.SOCK_CLOEXEC, 0);
        if (fd < 0 || UnixAddress.Parse(SocketPath).Bind(fd) != 0 || Libc.listen(fd, 4) != 0)
            throw new InvalidOperationException($"cannot listen on {SocketPath}: {Libc.ErrorText(Libc.LastError)}");
        return fd;
    }

    protected override void Feed(ReadOnlySpan<byte> input)
    {
        var (listeningFd, memory) = _setup.Value;
        memory.Reset();
        var datagrams = Datagram.Parse(input);
        var before = OpenDescriptors.Snapshot();
        // The master answers from another thread: the slave's Connect blocks until it has.
        var master = Task.Run(() =>
        {
            var peer = RawPeer.Accept(listeningFd, 5000);
            foreach (var d in datagrams)
                if (!peer.Send(d, memory)) break;
            peer.EndSending();
            return peer;
        });
        try
        {
            using var connection = MemifSlave.Connect(Slave, TimeSpan.FromSeconds(5));
            connection.Poll(); // whatever the master sent after CONNECTED
        }
        finally
        {
            master.Result.Dispose();
        }
        OpenDescriptors.Expect(before, "after the handshake");
    }

    protected override bool IsRejection(Exception e) => e is MemifException;

    public override IEnumerable<(string Name, byte[] Input)> Seeds
    {
        get
        {
            var ack = Datagram.Of(Message.Create(MessageType.Ack));
            // INIT, two regions, four rings: seven ACKs, then CONNECTED.
            var handshake = Enumerable.Repeat(ack, 7).Append(Datagram.Of(Message.Connect(MessageType.Connected, "fuzz-master")));
            yield return ("two-queue-pairs", Datagram.Encode([Datagram.Of(Message.Hello("fuzz", 255, 1, 1, 14)), .. handshake]));
            yield return ("one-queue-pair-then-disconnect", Datagram.Encode(
                [Datagram.Of(Message.Hello("fuzz", 255, 0, 0, 2)), .. Enumerable.Repeat(ack, 5),
                 Datagram.Of(Message.Connect(MessageType.Connected, "fuzz-master")), Datagram.Of(Message.Disconnect(0, "bye"))]));
            yield return ("refused", Datagram.Encode(Datagram.Of(Message.Hello("fuzz", 255, 1, 1, 14)), Datagram.Of(Message.Disconnect(1, "no"))));
        }
    }
}
