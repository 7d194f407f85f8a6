using Memif.Native;
using Memif.Protocol;
using Memif.SharedMemory;
using Xunit;

namespace Memif.Tests;

/// <summary>
/// A hostile slave against the C# master, which runs as the Memif.Echo server in a process of its
/// own (a SIGBUS there must not kill the test host). The slave writes bad values into the control
/// channel or into shared memory; each case must end that connection with a DISCONNECT naming
/// the reason, and the server must live on, answer the next slave, and exit 0 on SIGTERM.
/// </summary>
public unsafe class HostileSlaveTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);

    private static EchoServerProcess StartMaster(string path) => EchoServerProcess.Start(path, "--role", "master");

    /// <summary>The server answers a well-behaved slave: it survived, and it went back to accepting.</summary>
    private static void AssertStillServes(string path)
    {
        using var good = MemifSlave.Connect(new MemifOptions { SocketPath = path }, Generous);
        Frames.RoundTrip(good, 99);
    }

    // ---------------------------------------------------------------- regions

    /// <summary>A memfd of 64 KiB: sealable (but not sealed) or not sealable at all.</summary>
    private static int Memfd(bool sealable, ulong size = RawSlave.RegionBytes)
    {
        int fd = Libc.memfd_create("hostile", Libc.MFD_CLOEXEC | (sealable ? Libc.MFD_ALLOW_SEALING : 0));
        Assert.True(fd >= 0);
        Assert.Equal(0, Libc.ftruncate(fd, (long)size));
        return fd;
    }

    /// <summary>
    /// A slave written by hand over a raw control connection: region 0 is whatever fd the test
    /// passes, rings of 64 slots at offsets 0 (S2M) and 2048 (M2S), one eventfd for both.
    /// </summary>
    private sealed class RawSlave : IDisposable
    {
        public const ulong RegionBytes = 64 * 1024;
        private const int Log2 = 6;
        public readonly RawPeer Peer;
        private readonly int _eventFd = Libc.eventfd(0, Libc.EFD_NONBLOCK | Libc.EFD_CLOEXEC);

        public RawSlave(string path)
        {
            Peer = RawPeer.Connect(path);
            Peer.Expect(MessageType.Hello);
        }

        /// <summary>Cookies and zeroed rings, written through a mapping of our own.</summary>
        public static void LayOutRings(int fd)
        {
            void* p = Libc.mmap(null, (nuint)RegionBytes, Libc.PROT_READ_WRITE, Libc.MAP_SHARED, fd, 0);
            Assert.True(p != (void*)-1);
            new Ring((byte*)p, Log2, RingDirection.S2M, 0, -1).Initialise(false);
            new Ring((byte*)p + 2048, Log2, RingDirection.M2S, 0, -1).Initialise(false);
            Libc.munmap(p, (nuint)RegionBytes);
        }

        public void Init() => Step(Message.Init(0, null, "hostile"));

        public void AddRegion(ushort index, int fd, ulong claimedSize) => Peer.Send(Message.AddRegion(index, claimedSize), fd);

        public void Step(Message m, int fd = -1)
        {
            if (fd >= 0) Peer.Send(m, fd);
            else Peer.Send(m);
            Peer.Expect(MessageType.Ack);
        }

        /// <summary>INIT, region 0, both rings, CONNECT: a complete handshake (the region must hold the rings).</summary>
        public void Connect(int regionFd)
        {
            LayOutRings(regionFd);
            Init();
            Step(Message.AddRegion(0, RegionBytes), regionFd);
            Step(Message.AddRing(true, 0, 0, 0, Log2), _eventFd);
            Step(Message.AddRing(false, 0, 0, 2048, Log2), _eventFd);
            Peer.Send(Message.Connect(MessageType.Connect, "hostile"));
            Peer.Expect(MessageType.Connected);
        }

        public void Dispose()
        {
            Peer.Dispose();
            Libc.close(_eventFd);
        }
    }

    public static TheoryData<string, string> RefusedRegions => new()
    {
        { "memfd made without MFD_ALLOW_SEALING", "Region memfd cannot be sealed (made without MFD_ALLOW_SEALING)" },
        { "a disk file, not a memfd", "Region fd cannot be sealed (not a memfd)" },
        { "memfd smaller than the size claimed", "Invalid region size" },
        { "memfd truncated before it was sent", "Invalid region size" },
    };

    /// <summary>The region fd (ours to close) and the size the slave claims for it.</summary>
    private static (int Fd, ulong Claimed) BadRegion(string scenario)
    {
        switch (scenario)
        {
            case "memfd made without MFD_ALLOW_SEALING":
                return (Memfd(sealable: false), RawSlave.RegionBytes);
            case "a disk file, not a memfd":
                // Beside the test assembly, on disk: a truncate under a mapping is as fatal there as on a memfd.
                string file = Path.Combine(AppContext.BaseDirectory, $"hostile-region-{Guid.NewGuid():N}");
                using (var stream = new FileStream(file, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.DeleteOnClose))
                {
                    stream.SetLength((long)RawSlave.RegionBytes);
                    return (Libc.fcntl((int)stream.SafeFileHandle.DangerousGetHandle(), 1030 /* F_DUPFD_CLOEXEC */, 0), RawSlave.RegionBytes);
                }
            case "memfd smaller than the size claimed":
                int sealedFd = Memfd(sealable: true);
                Libc.fcntl(sealedFd, Libc.F_ADD_SEALS, Libc.F_SEAL_SHRINK);
                return (sealedFd, 2 * RawSlave.RegionBytes);
            case "memfd truncated before it was sent":
                int truncated = Memfd(sealable: true);
                Assert.Equal(0, Libc.ftruncate(truncated, 4096));
                return (truncated, RawSlave.RegionBytes);
            default: throw new ArgumentException(scenario);
        }
    }

    [Theory]
    [MemberData(nameof(RefusedRegions))]
    public void Master_refuses_a_region_it_could_not_trust_and_keeps_serving(string scenario, string reason)
    {
        string path = Paths.Socket();
        using var server = StartMaster(path);
        var (fd, claimed) = BadRegion(scenario);
        using (var slave = new RawSlave(path))
        {
            slave.Init();
            slave.AddRegion(0, fd, claimed);
            Assert.Equal(reason, slave.Peer.ExpectDisconnect());
        }
        Libc.close(fd);
        server.ExpectLine($"refused a slave: {reason}");
        AssertStillServes(path);
        server.Stop();
    }

    [Fact]
    public void Master_refuses_region_0_sent_twice()
    {
        string path = Paths.Socket();
        using var server = StartMaster(path);
        int first = Memfd(sealable: true), second = Memfd(sealable: true);
        using (var slave = new RawSlave(path))
        {
            slave.Init();
            slave.Step(Message.AddRegion(0, RawSlave.RegionBytes), first);
            slave.AddRegion(0, second, RawSlave.RegionBytes); // a remap of a region already mapped
            Assert.Equal("Invalid region index", slave.Peer.ExpectDisconnect());
        }
        Libc.close(first);
        Libc.close(second);
        server.ExpectLine("refused a slave: Invalid region index");
        AssertStillServes(path);
        server.Stop();
    }

    [Fact]
    public void Master_seals_an_unsealed_memfd_so_the_slave_cannot_truncate_it_under_the_mapping()
    {
        // The SIGBUS of the issue: truncated after the handshake, the master's next look at the ring
        // would touch pages past the end of the file. The master added F_SEAL_SHRINK at ADD_REGION.
        string path = Paths.Socket();
        using var server = StartMaster(path);
        int fd = Memfd(sealable: true);
        using (var slave = new RawSlave(path))
        {
            slave.Connect(fd);
            Assert.NotEqual(0, Libc.fcntl(fd, Libc.F_GET_SEALS, 0) & Libc.F_SEAL_SHRINK);
            Assert.Equal(-1, Libc.ftruncate(fd, 0));
            Assert.Equal(Libc.EPERM, Libc.LastError);
            Assert.Equal(-1, Libc.ftruncate(fd, 4096));
            Assert.Equal(Libc.EPERM, Libc.LastError);
            Assert.Equal(0, Libc.ftruncate(fd, 2 * (long)RawSlave.RegionBytes)); // growing stays allowed: it cannot hurt a mapping
        }
        Libc.close(fd);
        server.ExpectLine("link down (peer closed the control channel)");
        AssertStillServes(path);
        server.Stop();
    }

    [Fact]
    public void Master_refuses_a_region_added_after_connect()
    {
        string path = Paths.Socket();
        using var server = StartMaster(path);
        int fd = Memfd(sealable: true), extra = Memfd(sealable: true);
        using (var slave = new RawSlave(path))
        {
            slave.Connect(fd);
            slave.AddRegion(1, extra, RawSlave.RegionBytes);
            Assert.Equal("Unexpected message", slave.Peer.ExpectDisconnect());
        }
        Libc.close(fd);
        Libc.close(extra);
        server.ExpectLine("link down (Unexpected message)");
        AssertStillServes(path);
        server.Stop();
    }

    // ---------------------------------------------------------------- rings and descriptors

    public static TheoryData<string> SharedMemoryCases => new()
    {
        "S2M head jumps past the ring",
        "S2M head moves backwards",
        "M2S head jumps past the ring",
        "M2S head moves backwards",
        "S2M descriptor runs past the end of its region",
        "S2M descriptor names a region that does not exist",
        "M2S buffer runs past the end of its region",
        "M2S buffer names a region that does not exist",
    };

    /// <summary>
    /// Writes the scenario's bad value into shared memory, after one good round trip (so slot 0 is
    /// used, the master has seen head 1 on S2M and 1024 posted buffers on M2S), and returns the
    /// reason the master must give.
    /// </summary>
    private static string Corrupt(MemifConnection slave, string scenario)
    {
        var s2m = slave.Tx[0].Ring;
        var m2s = slave.Rx[0].Ring;
        int n = s2m.Size;
        ulong size = slave.Regions[0].Size;
        Frames.RoundTrip(slave, 1);
        switch (scenario)
        {
            case "S2M head jumps past the ring":
                s2m.Head = (ushort)(n + 2); // one slot more than the master has room for
                return $"S2M ring 0 head jumped ahead to {n + 2} (at most {n + 1})";
            case "S2M head moves backwards":
                Frames.RoundTrip(slave, 2);
                s2m.Head = 1;
                return "S2M ring 0 head moved backwards from 2 to 1";
            case "M2S head jumps past the ring":
                m2s.Head = (ushort)(n + 2);
                Frames.Send(slave, 0, Frames.Make(64, 2)); // the master reads posted buffers when it has an echo to send
                return $"M2S ring 0 head jumped ahead to {n + 2} (at most {n + 1})";
            case "M2S head moves backwards":
                m2s.Head = (ushort)(n - 24);
                Frames.Send(slave, 0, Frames.Make(64, 2));
                return $"M2S ring 0 head moved backwards from {n} to {n - 24}";
            case "S2M descriptor runs past the end of its region":
                *s2m.Desc(1) = new Descriptor { Region = 0, Offset = (uint)size - 10, Length = 64 };
                s2m.Head = 2;
                return $"S2M ring 0 slot 1: offset {size - 10} + length 64 outside region 0 ({size} bytes)";
            case "S2M descriptor names a region that does not exist":
                *s2m.Desc(1) = new Descriptor { Region = 5, Offset = 0, Length = 64 };
                s2m.Head = 2;
                return "S2M ring 0 slot 1: region 5 does not exist (1 mapped)";
            case "M2S buffer runs past the end of its region":
                m2s.Desc(1)->Offset = (uint)size - 100; // a posted 2048-byte buffer hanging over the end
                Frames.Send(slave, 0, Frames.Make(64, 2));
                return $"M2S ring 0 slot 1: offset {size - 100} + length 2048 outside region 0 ({size} bytes)";
            case "M2S buffer names a region that does not exist":
                m2s.Desc(1)->Region = 3;
                Frames.Send(slave, 0, Frames.Make(64, 2));
                return $"M2S ring 0 slot 1: region 3 does not exist (1 mapped)";
            default: throw new ArgumentException(scenario);
        }
    }

    [Theory]
    [MemberData(nameof(SharedMemoryCases))]
    public void Master_disconnects_a_slave_that_writes_impossible_values_into_shared_memory(string scenario)
    {
        string path = Paths.Socket();
        using var server = StartMaster(path);
        string reason;
        using (var slave = MemifSlave.Connect(new MemifOptions { SocketPath = path }, Generous))
        {
            reason = Corrupt(slave, scenario);
            Assert.Equal($"peer disconnected: {reason}", Frames.WaitForDisconnect(slave));
        }
        server.ExpectLine($"link down ({reason})");
        AssertStillServes(path);
        server.Stop();
    }

    // ---------------------------------------------------------------- a slave that dies

    [Fact]
    public void Master_drops_a_slave_that_dies_mid_handshake()
    {
        string path = Paths.Socket();
        using var server = StartMaster(path);
        int fd = Memfd(sealable: true);
        using (var slave = new RawSlave(path))
        {
            slave.Init();
            slave.Step(Message.AddRegion(0, RawSlave.RegionBytes), fd);
        } // the socket closes, as the kernel closes it when a process dies: no DISCONNECT can be read
        Libc.close(fd);
        server.ExpectLine("refused a slave: slave closed the connection during the handshake");
        AssertStillServes(path);
        server.Stop();
    }

    [Fact]
    public void Master_survives_a_slave_process_killed_mid_burst()
    {
        string path = Paths.Socket();
        using var server = StartMaster(path);
        using (var slave = EchoServerProcess.StartProgram("client", "--role", "slave", "--memif-socket", path,
                   "--payload", "64", "--duration", "60", "--timeout", "20"))
        {
            server.ExpectLine("memif: connected to");
            // Let frames flow so the kill lands mid-burst; the outcome must be the same either way.
            Thread.Sleep(300);
            slave.Kill(); // SIGKILL: no DISCONNECT, its memory goes with it except what the master mapped
            slave.WaitForExit();
        }
        server.ExpectLine("link down (peer closed the control channel)");
        AssertStillServes(path);
        server.Stop();
    }
}
