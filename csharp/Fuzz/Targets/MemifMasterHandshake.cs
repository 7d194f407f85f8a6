using Memif;
using Memif.Protocol;

namespace Fuzz.Targets;

/// <summary>
/// The master's side of the handshake (<see cref="MemifListener"/>: control-message checks and
/// the state machine from INIT to CONNECT, then the connected link's control handling) against
/// a slave that sends the input's datagrams (<see cref="Datagram.Parse"/>) and then stops.
/// The listener refuses with a DISCONNECT, never an exception, so every exception is a crash;
/// so is a handshake that neither connects nor refuses, and a descriptor left open.
/// </summary>
sealed class MemifMasterHandshake() : FuzzTarget("memif-master-handshake", "MemifListener.Accept, the slave sending the input's datagrams")
{
    private static readonly string SocketPath = $"@fuzz-memif-master-{Environment.ProcessId}";
    private const string Secret = "fuzz-secret";

    // Interface 0 takes two queue pairs and no secret; interface 1 wants the secret.
    private readonly Lazy<(MemifListener Listener, PeerMemory Memory)> _setup = new(() => (
        MemifListener.Listen(SocketPath,
        [
            new MemifOptions { SocketPath = SocketPath, InterfaceId = 0, Queues = 2 },
            new MemifOptions { SocketPath = SocketPath, InterfaceId = 1, Secret = Secret },
        ]),
        new PeerMemory()));

    protected override void Feed(ReadOnlySpan<byte> input)
    {
        var (listener, memory) = _setup.Value;
        memory.Reset();
        var datagrams = Datagram.Parse(input);
        var before = OpenDescriptors.Snapshot();
        using (var slave = RawPeer.Connect(SocketPath))
        {
            foreach (var d in datagrams)
                if (!slave.Send(d, memory)) break;
            slave.EndSending();

            using var refused = new CancellationTokenSource();
            listener.Rejected = _ => refused.Cancel(); // or Accept would wait for the next slave
            using var connection = listener.Accept(TimeSpan.FromSeconds(10), refused.Token);
            if (connection is null && !refused.IsCancellationRequested)
                throw new InvariantException("the handshake neither connected nor refused the slave");
            connection?.Poll(); // whatever the slave sent after CONNECT
        }
        OpenDescriptors.Expect(before, "after the handshake");
    }

    protected override bool IsRejection(Exception e) => false;

    public override IEnumerable<(string Name, byte[] Input)> Seeds
    {
        get
        {
            Datagram Ring(bool s2m, ushort index, int slot) => Datagram.Of(
                Message.AddRing(s2m, index, 0, (uint)(slot * PeerMemory.RingSpacing), PeerMemory.Log2RingSize), withEventFd: true);
            var region = Datagram.Of(Message.AddRegion(0, PeerMemory.Size), withRegion: true);
            var connect = Datagram.Of(Message.Connect(MessageType.Connect, "fuzz-slave"));

            yield return ("one-queue-pair", Datagram.Encode(
                Datagram.Of(Message.Init(0, null, "fuzz")), region, Ring(true, 0, 0), Ring(false, 0, 1), connect));
            yield return ("two-queue-pairs", Datagram.Encode(
                Datagram.Of(Message.Init(0, null, "fuzz")), region,
                Ring(true, 0, 0), Ring(true, 1, 1), Ring(false, 0, 2), Ring(false, 1, 3), connect));
            yield return ("secret-then-disconnect", Datagram.Encode(
                Datagram.Of(Message.Init(1, Secret, "fuzz")), region, Ring(true, 0, 0), Ring(false, 0, 1), connect,
                Datagram.Of(Message.Disconnect(0, "bye"))));
            yield return ("short-message", Datagram.Encode(
                Datagram.Of(Message.Init(0, null, "fuzz")), new Datagram(new byte[64])));
        }
    }
}
