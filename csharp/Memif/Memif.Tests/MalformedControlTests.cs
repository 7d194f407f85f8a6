using Memif.Native;
using Memif.Protocol;
using Memif.SharedMemory;
using Xunit;

namespace Memif.Tests;

/// <summary>
/// Hostile peers on the control channel: each case must end in a DISCONNECT with a reason,
/// leave no descriptor behind, and leave the peer serving the next, well-behaved connection.
/// </summary>
public class MalformedControlTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    /// <summary>A fresh memfd and eventfd for the raw peer to pass (it closes its copies itself).</summary>
    private sealed unsafe class PeerFds : IDisposable
    {
        public readonly Region Region = Region.Create("raw-peer", 64 * 1024);
        public readonly int EventFd = Libc.eventfd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);

        public PeerFds()
        {
            new Ring(Region.Base, 6, RingDirection.S2M, 0, EventFd).Initialise(false);
            new Ring(Region.Base + 2048, 6, RingDirection.M2S, 0, EventFd).Initialise(false);
        }

        public void Dispose()
        {
            Region.Dispose();
            Libc.close(EventFd);
        }
    }

    public static TheoryData<string, string> MasterCases => new()
    {
        { "wrong size", "Invalid message size" },
        { "oversized", "Invalid message size" },
        { "unknown type", "Unknown message type" },
        { "type none", "Unknown message type" },
        { "out of order: ADD_REGION before INIT", "Unexpected message" },
        { "out of order: CONNECT before INIT", "Unexpected message" },
        { "second INIT", "Unexpected message" },
        { "HELLO sent to the master", "Unexpected message" },
        { "bad version", "Incompatible memif version" },
        { "non-ethernet mode", "Only ethernet mode supported" },
        { "missing region fd", "Missing region fd" },
        { "region index gap", "Invalid region index" },
        { "region larger than its fd", "Invalid region size" },
        { "missing ring fd", "Missing interrupt fd" },
        { "bad ring index", "Invalid ring index" },
        { "ring outside its region", "Invalid ring offset" },
        { "ring in a missing region", "Invalid ring region" },
        { "private header", "Private headers not supported" },
        { "ring size 2^15", "Invalid ring size" },
        { "fd on INIT", "Unexpected file descriptor" },
        { "two fds on ADD_REGION", "Too many file descriptors" },
        { "CONNECT without rings", "No rings" },
        { "wrong ring cookie", "Wrong ring cookie" },
    };

    private static unsafe void Play(RawPeer peer, PeerFds fds, string scenario)
    {
        var init = Message.Init(0, null, "raw");
        var region = Message.AddRegion(0, fds.Region.Size);
        var s2m = Message.AddRing(true, 0, 0, 0, 6);
        var m2s = Message.AddRing(false, 0, 0, 2048, 6);
        void Ack() => peer.Expect(MessageType.Ack);
        void Setup()
        {
            peer.Send(init); Ack();
            peer.Send(region, fds.Region.Fd); Ack();
        }

        switch (scenario)
        {
            case "wrong size": peer.SendBytes(new byte[64]); break;
            case "oversized": peer.SendBytes(new byte[200]); break;
            case "unknown type": peer.Send(Message.Create((MessageType)99)); break;
            case "type none": peer.Send(Message.Create(MessageType.None)); break;
            case "out of order: ADD_REGION before INIT": peer.Send(region, fds.Region.Fd); break;
            case "out of order: CONNECT before INIT": peer.Send(Message.Connect(MessageType.Connect, "x")); break;
            case "second INIT": peer.Send(init); Ack(); peer.Send(init); break;
            case "HELLO sent to the master": peer.Send(init); Ack(); peer.Send(Message.Hello("x", 1, 1, 1, 10)); break;
            case "bad version": peer.Send(Message.Init(0, null, "raw", version: 0x0100)); break;
            case "non-ethernet mode": peer.Send(Message.Init(0, null, "raw", mode: 1)); break;
            case "missing region fd": peer.Send(init); Ack(); peer.Send(region); break;
            case "region index gap": peer.Send(init); Ack(); peer.Send(Message.AddRegion(1, fds.Region.Size), fds.Region.Fd); break;
            case "region larger than its fd": peer.Send(init); Ack(); peer.Send(Message.AddRegion(0, 1UL << 40), fds.Region.Fd); break;
            case "missing ring fd": Setup(); peer.Send(s2m); break;
            case "bad ring index": Setup(); peer.Send(Message.AddRing(true, 5, 0, 0, 6), fds.EventFd); break;
            case "ring outside its region": Setup(); peer.Send(Message.AddRing(true, 0, 0, 64 * 1024 - 256, 6), fds.EventFd); break;
            case "ring in a missing region": Setup(); peer.Send(Message.AddRing(true, 0, 3, 0, 6), fds.EventFd); break;
            case "private header": Setup(); peer.Send(Message.AddRing(true, 0, 0, 0, 6, privateHeaderSize: 8), fds.EventFd); break;
            case "ring size 2^15": Setup(); peer.Send(Message.AddRing(true, 0, 0, 0, 15), fds.EventFd); break;
            case "fd on INIT": peer.Send(init, fds.EventFd); break;
            case "two fds on ADD_REGION": peer.Send(init); Ack(); peer.Send(region, fds.Region.Fd, fds.EventFd); break;
            case "CONNECT without rings": Setup(); peer.Send(Message.Connect(MessageType.Connect, "x")); break;
            case "wrong ring cookie":
                Setup();
                peer.Send(s2m, fds.EventFd); Ack();
                peer.Send(m2s, fds.EventFd); Ack();
                new Ring(fds.Region.Base, 6, RingDirection.S2M, 0, -1).Cookie = 0xDEADBEEF;
                peer.Send(Message.Connect(MessageType.Connect, "x"));
                break;
            default: throw new ArgumentException(scenario);
        }
    }

    [Theory]
    [MemberData(nameof(MasterCases))]
    public async Task Master_disconnects_a_misbehaving_slave_with_a_reason_and_keeps_serving(string scenario, string reason)
    {
        string path = Paths.Socket();
        var options = new MemifOptions { SocketPath = path, Role = MemifRole.Master, Log2RingSize = 6 };
        using var listener = MemifListener.Listen(options);
        using var fds = new PeerFds();

        var rejections = new System.Collections.Concurrent.BlockingCollection<string>();
        listener.Rejected = rejections.Add;
        // One Accept spans every round: refused slaves do not end it, the good slave at the end does.
        var accept = Task.Run(() => listener.Accept(TimeSpan.FromSeconds(60)));

        // Warm up once so lazily opened runtime descriptors do not count as leaks.
        RunCase();
        int before = Paths.OpenFdCount();
        for (int i = 0; i < 10; i++) RunCase();
        Assert.InRange(Paths.OpenFdCount(), 0, before + 2); // ten leaky rounds would show 10+ more

        // Still serving: a good slave connects and gets a link.
        using var good = MemifSlave.Connect(options with { Role = MemifRole.Slave }, Wait);
        using var master = await accept;
        Assert.NotNull(master);

        void RunCase()
        {
            using (var peer = RawPeer.Connect(path))
            {
                peer.Expect(MessageType.Hello);
                Play(peer, fds, scenario);
                Assert.Equal(reason, peer.ExpectDisconnect());
            }
            Assert.True(rejections.TryTake(out string? logged, 5000));
            Assert.Equal(reason, logged);
        }
    }

    [Fact]
    public async Task Master_drops_a_slave_that_goes_silent_mid_handshake()
    {
        string path = Paths.Socket();
        using var listener = MemifListener.Listen(new MemifOptions
        {
            SocketPath = path,
            Role = MemifRole.Master,
            HandshakeTimeout = TimeSpan.FromMilliseconds(200),
        });
        var accepting = Task.Run(() => listener.Accept(TimeSpan.FromSeconds(1)));
        using var peer = RawPeer.Connect(path);
        peer.Expect(MessageType.Hello);
        Assert.Equal("Handshake timeout", peer.ExpectDisconnect());
        Assert.Null(await accepting);
    }

    [Fact]
    public async Task Connected_master_answers_garbage_with_a_disconnect()
    {
        string path = Paths.Socket();
        var options = new MemifOptions { SocketPath = path, Log2RingSize = 6 };
        using var listener = MemifListener.Listen(options with { Role = MemifRole.Master });
        var accept = Task.Run(() => listener.Accept(Wait));
        using var slave = MemifSlave.Connect(options, Wait);
        using var master = (await accept)!;
        // The slave's control socket is ours to abuse: an unknown type after CONNECT.
        var raw = new RawPeer(new ControlChannel(Libc.fcntl(slave.Control.Fd, 1030 /* F_DUPFD_CLOEXEC */, 0)));
        raw.Send(Message.Create((MessageType)77));
        Assert.False(master.Wait(2000) && master.Poll());
        Assert.Equal("Unknown message type", master.DisconnectReason);
        raw.Dispose();
    }

    public static TheoryData<string, string> SlaveCases => new()
    {
        { "wrong size", "Invalid message size" },
        { "unknown type", "Unknown message type" },
        { "ACK before HELLO", "Unexpected message" },
        { "bad version", "Incompatible memif version" },
        { "fd on HELLO", "Unexpected file descriptor" },
        { "CONNECTED instead of ACK", "Unexpected message" },
    };

    [Theory]
    [MemberData(nameof(SlaveCases))]
    public async Task Slave_disconnects_a_misbehaving_master_with_a_reason(string scenario, string reason)
    {
        using var master = new RawMaster();
        using var fds = new PeerFds();
        var options = new MemifOptions { SocketPath = master.Path, Log2RingSize = 6 };

        await RunCase();
        int before = Paths.OpenFdCount();
        for (int i = 0; i < 10; i++) await RunCase();
        Assert.InRange(Paths.OpenFdCount(), 0, before + 2);

        async Task RunCase()
        {
            var slave = Task.Run(() => MemifSlave.Connect(options, Wait));
            using (var peer = master.Accept())
            {
                var hello = Message.Hello("raw", 255, 255, 255, 14);
                switch (scenario)
                {
                    case "wrong size": peer.SendBytes(new byte[100]); break;
                    case "unknown type": peer.Send(Message.Create((MessageType)200)); break;
                    case "ACK before HELLO": peer.Send(Message.Create(MessageType.Ack)); break;
                    case "bad version":
                        hello.SetU16(34, 0x0300);
                        hello.SetU16(36, 0x0300);
                        peer.Send(hello);
                        break;
                    case "fd on HELLO": peer.Send(hello, fds.EventFd); break;
                    case "CONNECTED instead of ACK":
                        peer.Send(hello);
                        peer.Expect(MessageType.Init);
                        peer.Send(Message.Connect(MessageType.Connected, "x"));
                        break;
                }
                Assert.Equal(reason, peer.ExpectDisconnect());
            }
            var e = await Assert.ThrowsAsync<MemifException>(() => slave);
            Assert.Contains(reason, e.Message);
        }
    }
}
