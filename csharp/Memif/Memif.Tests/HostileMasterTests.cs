using Memif.Native;
using Memif.Protocol;
using Memif.SharedMemory;
using Xunit;

namespace Memif.Tests;

/// <summary>
/// A hostile master against the C# slave, which runs as the Memif.Echo server (its default role)
/// in a process of its own. The master writes bad values into the slave's shared memory or the
/// control channel; each case must end that connection with a DISCONNECT naming the reason, and
/// the slave must live on, reconnect with fresh memory, echo again, and exit 0 on SIGTERM.
/// </summary>
public unsafe class HostileMasterTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(20);

    private static MemifListener Listen(string path) => MemifListener.Listen(new MemifOptions { SocketPath = path, Role = MemifRole.Master });

    private static MemifConnection Accept(MemifListener listener) =>
        listener.Accept(Generous) ?? throw new InvalidOperationException($"the echo slave did not connect: {listener.LastRejection}");

    /// <summary>The slave came back on its own (fresh memory, fresh handshake) and echoes.</summary>
    private static void AssertReconnectsAndEchoes(MemifListener listener)
    {
        using var next = Accept(listener);
        Frames.RoundTrip(next, 99);
    }

    /// <summary>
    /// Our socket goes first: the slave reconnects at once, and one left waiting for a HELLO we
    /// never send would hold SIGTERM up for its handshake timeout.
    /// </summary>
    private static void Stop(EchoServerProcess server, MemifListener listener)
    {
        listener.Dispose();
        server.Stop();
    }

    public static TheoryData<string> SharedMemoryCases => new()
    {
        "M2S tail jumps past the ring",
        "M2S tail moves backwards",
        "S2M tail jumps past the slave's head",
        "S2M tail moves backwards",
        "M2S descriptor longer than its buffer",
        "M2S descriptor names a region that does not exist",
        "M2S descriptor runs past the end of its region",
    };

    /// <summary>
    /// Writes the scenario's bad value into the slave's shared memory, after one good round trip (so
    /// slot 0 is used, the slave has seen tail 1 on M2S and tail 0 on S2M), and returns the reason
    /// the slave must give.
    /// </summary>
    private static string Corrupt(MemifConnection master, string scenario)
    {
        var m2s = master.Tx[0].Ring;
        var s2m = master.Rx[0].Ring;
        int n = m2s.Size;
        ulong size = master.Regions[0].Size;
        Frames.RoundTrip(master, 1);
        var posted = *m2s.Desc(1); // what the slave posted in the next slot
        switch (scenario)
        {
            case "M2S tail jumps past the ring":
                m2s.Tail = (ushort)(n + 2); // one frame more than the slave posted buffers for
                return $"M2S ring 0 tail jumped ahead to {n + 2} (at most {n + 1})";
            case "M2S tail moves backwards":
                Frames.RoundTrip(master, 2);
                m2s.Tail = 1;
                return "M2S ring 0 tail moved backwards from 2 to 1";
            case "S2M tail jumps past the slave's head":
                s2m.Tail = 5; // the slave has sent one frame
                Frames.Send(master, 0, Frames.Make(64, 2)); // the slave reads its TX tail when it has an echo to send
                return "S2M ring 0 tail jumped ahead to 5 (at most 1)";
            case "S2M tail moves backwards":
                Frames.RoundTrip(master, 2); // the slave read tail 1 before echoing this one
                s2m.Tail = 0;
                Frames.Send(master, 0, Frames.Make(64, 3));
                return "S2M ring 0 tail moved backwards from 1 to 0";
            case "M2S descriptor longer than its buffer":
                *m2s.Desc(1) = posted with { Length = 4096 };
                m2s.Tail = 2;
                return $"M2S ring 0 slot 1: region 0 offset {posted.Offset} length 4096 outside its posted 2048-byte buffer";
            case "M2S descriptor names a region that does not exist":
                *m2s.Desc(1) = posted with { Region = 9, Length = 64 };
                m2s.Tail = 2;
                return $"M2S ring 0 slot 1: region 9 offset {posted.Offset} length 64 outside its posted 2048-byte buffer";
            case "M2S descriptor runs past the end of its region":
                *m2s.Desc(1) = posted with { Offset = (uint)size - 10, Length = 64 };
                m2s.Tail = 2;
                return $"M2S ring 0 slot 1: region 0 offset {size - 10} length 64 outside its posted 2048-byte buffer";
            default: throw new ArgumentException(scenario);
        }
    }

    [Theory]
    [MemberData(nameof(SharedMemoryCases))]
    public void Slave_disconnects_a_master_that_writes_impossible_values_into_shared_memory(string scenario)
    {
        string path = Paths.Socket();
        using var listener = Listen(path);
        using var server = EchoServerProcess.Start(path);
        string reason;
        using (var master = Accept(listener))
        {
            reason = Corrupt(master, scenario);
            Assert.Equal($"peer disconnected: {reason}", Frames.WaitForDisconnect(master));
        }
        server.ExpectLine($"link down ({reason})");
        AssertReconnectsAndEchoes(listener);
        Stop(server, listener);
    }

    [Fact]
    public void Master_cannot_truncate_the_slaves_region_because_the_slave_sealed_it()
    {
        string path = Paths.Socket();
        using var listener = Listen(path);
        using var server = EchoServerProcess.Start(path);
        using var master = Accept(listener);
        Frames.RoundTrip(master, 1);
        foreach (var region in master.Regions)
        {
            Assert.Equal(-1, Libc.ftruncate(region.Fd, 0));
            Assert.Equal(Libc.EPERM, Libc.LastError);
        }
        Frames.RoundTrip(master, 2); // the same link, unharmed
        Stop(server, listener);
    }

    [Fact]
    public void Slave_refuses_a_region_sent_after_connect()
    {
        string path = Paths.Socket();
        using var listener = Listen(path);
        using var server = EchoServerProcess.Start(path);
        using (var master = Accept(listener))
        using (var extra = Region.Create("hostile-master", 64 * 1024))
        {
            Frames.RoundTrip(master, 1);
            Assert.True(master.Control.Send(Message.AddRegion(1, extra.Size), extra.Fd));
            Assert.Equal("peer disconnected: Unexpected message", Frames.WaitForDisconnect(master));
        }
        server.ExpectLine("link down (Unexpected message)");
        AssertReconnectsAndEchoes(listener);
        Stop(server, listener);
    }

    [Fact]
    public void Slave_retries_after_a_master_that_dies_mid_handshake()
    {
        var raw = new RawMaster();
        string path = raw.Path;
        using var server = EchoServerProcess.Start(path);
        using (raw)
        using (var peer = raw.Accept())
        {
            peer.Send(Message.Hello("hostile", 255, 255, 255, 14));
            peer.Expect(MessageType.Init);
            peer.Send(Message.Create(MessageType.Ack));
            peer.Expect(MessageType.AddRegion);
        } // the socket closes, as the kernel closes it when a process dies
        server.ExpectLine("memif master closed the connection while we waited for Ack; retrying");
        using var listener = Listen(path);
        AssertReconnectsAndEchoes(listener);
        Stop(server, listener);
    }

    [Fact]
    public void Slave_survives_a_master_process_killed_mid_burst()
    {
        string path = Paths.Socket();
        using var server = EchoServerProcess.Start(path);
        using (var master = EchoServerProcess.StartProgram("client", "--memif-socket", path, "--payload", "64", "--duration", "60", "--timeout", "20"))
        {
            server.ExpectLine("memif: connected to");
            // Let frames flow so the kill lands mid-burst; the outcome must be the same either way.
            Thread.Sleep(300);
            master.Kill(); // SIGKILL: no DISCONNECT; its socket file stays behind, stale
            master.WaitForExit();
        }
        server.ExpectLine("link down (peer closed the control channel)");
        using var listener = Listen(path); // replaces the stale socket file
        AssertReconnectsAndEchoes(listener);
        Stop(server, listener);
    }
}
