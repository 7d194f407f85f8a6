using Memif.Protocol;
using Memif.SharedMemory;
using Xunit;

namespace Memif.Tests;

/// <summary>C# slave against C# master, in one process but over a real socket and real shared memory (memfds mapped twice).</summary>
public class MasterSlaveTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    private static (MemifOptions Master, MemifOptions Slave) Options(string path, Func<MemifOptions, MemifOptions>? tweak = null)
    {
        var common = new MemifOptions { SocketPath = path, Log2RingSize = 8 };
        if (tweak is not null) common = tweak(common);
        return (common with { Role = MemifRole.Master, InterfaceName = "m" }, common with { Role = MemifRole.Slave, InterfaceName = "s" });
    }

    private static void EchoRoundTrips(Pair pair, int queues, int frameLength, int frames)
    {
        using var stop = new CancellationTokenSource();
        var echo = Frames.EchoLoop(pair.Master, stop.Token);
        try
        {
            for (ulong i = 0; i < (ulong)frames; i++)
            {
                for (int q = 0; q < queues; q++)
                {
                    var frame = Frames.Make(frameLength, i * 100 + (ulong)q);
                    Frames.Send(pair.Slave, q, frame);
                    var echoed = Frames.Receive(pair.Slave, q, Wait);
                    Assert.NotNull(echoed);
                    Assert.Equal(Frames.Swapped(frame), echoed);
                }
            }
        }
        finally
        {
            stop.Cancel();
            echo.Wait();
        }
    }

    [Fact]
    public void Handshake_exchanges_names_and_echo_swaps_macs()
    {
        var (m, s) = Options(Paths.Socket());
        using var pair = Pair.Connect(m, s);
        Assert.Equal("csharp-memif", pair.Slave.PeerName);
        Assert.Equal("s", pair.Master.PeerInterfaceName);
        Assert.Equal("m", pair.Slave.PeerInterfaceName);
        EchoRoundTrips(pair, 1, 64, 300); // more frames than the 256-slot ring: indices wrap
    }

    [Fact]
    public void Filesystem_socket_is_owner_only()
    {
        string path = Paths.Socket();
        using var listener = MemifListener.Listen(new MemifOptions { SocketPath = path, Role = MemifRole.Master });
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void Abstract_socket_names_work()
    {
        var (m, s) = Options("@" + Paths.Socket().TrimStart('/'));
        using var pair = Pair.Connect(m, s);
        EchoRoundTrips(pair, 1, 100, 10);
    }

    [Fact]
    public void Several_queues_echo_independently()
    {
        var (m, s) = Options(Paths.Socket(), o => o with { Queues = 4 });
        using var pair = Pair.Connect(m, s);
        Assert.Equal(4, pair.Slave.Tx.Length);
        Assert.Equal(4, pair.Master.Rx.Length);
        EchoRoundTrips(pair, 4, 64, 20);
    }

    [Fact]
    public void Slave_asks_for_no_more_queues_than_the_master_offers()
    {
        string path = Paths.Socket();
        var (m, s) = Options(path, o => o with { Queues = 2 });
        using var pair = Pair.Connect(m, s with { Queues = 8 });
        Assert.Equal(2, pair.Slave.Tx.Length);
        Assert.Equal(2, pair.Slave.Rx.Length);
    }

    [Fact]
    public void Interrupt_mode_wakes_the_consumer_through_the_eventfd()
    {
        var (m, s) = Options(Paths.Socket(), o => o with { Mode = MemifMode.Interrupt });
        using var pair = Pair.Connect(m, s);
        // Both consumers cleared MASK_INT, so every publish kicks.
        Assert.False(pair.Master.Rx[0].Ring.InterruptsMasked);
        Assert.False(pair.Slave.Rx[0].Ring.InterruptsMasked);
        EchoRoundTrips(pair, 1, 64, 50);
    }

    [Fact]
    public void Polling_mode_masks_interrupts_on_the_rings_each_side_consumes()
    {
        var (m, s) = Options(Paths.Socket());
        using var pair = Pair.Connect(m, s);
        Assert.True(pair.Master.Rx[0].Ring.InterruptsMasked);
        Assert.True(pair.Slave.Rx[0].Ring.InterruptsMasked);
    }

    [Fact]
    public void Frames_larger_than_a_buffer_are_chained()
    {
        var (m, s) = Options(Paths.Socket(), o => o with { BufferSize = 2048 });
        using var pair = Pair.Connect(m, s);
        var frame = Frames.Make(5000, 7); // three slots: 2048 + 2048 + 904
        Frames.Send(pair.Slave, 0, frame);
        Assert.True(pair.Master.Rx[0].TryReceive(out var packet, Wait));
        Assert.Equal(3, packet.Segments);
        Assert.Equal(5000, packet.Length);
        var got = new byte[packet.Length];
        packet.CopyTo(got);
        Assert.Equal(frame, got);
        pair.Master.Rx[0].Release();
        EchoRoundTrips(pair, 1, 9000, 5);
    }

    [Fact]
    public unsafe void Master_skips_empty_descriptors_and_counts_them()
    {
        // Descriptors pointing outside the regions end the link (HostileSlaveTests); an empty one is only skipped.
        var (m, s) = Options(Paths.Socket());
        using var pair = Pair.Connect(m, s);
        Assert.True(pair.Slave.Tx[0].TryGetBuffer(out var empty));
        empty.Commit(0);
        Assert.True(pair.Slave.Tx[0].TrySend(Frames.Make(64, 5)));
        pair.Slave.Tx[0].Flush();

        Assert.True(pair.Master.Rx[0].TryReceive(out var packet, Wait));
        Assert.Equal(5UL, EthernetFrame.ReadSequence(packet.Span));
        Assert.Equal(1, pair.Master.Rx[0].BadDescriptors);

        // And the other way: an empty posted M2S buffer is passed over, never written to.
        pair.Slave.Rx[0].Ring.Desc(0)->Length = 0;
        Assert.True(pair.Master.Tx[0].TryGetBuffer(out var buffer));
        Assert.Equal(1, pair.Master.Tx[0].BadDescriptors);
        buffer.Commit(0);
        Assert.True(pair.Master.IsConnected);
    }

    [Fact]
    public void Buffers_spread_over_several_regions()
    {
        var (m, s) = Options(Paths.Socket(), o => o with { Queues = 3, BufferRegions = 2 });
        using var pair = Pair.Connect(m, s);
        Assert.Equal(3, pair.Master.Regions.Count); // rings in region 0, buffers in 1 and 2
        EchoRoundTrips(pair, 3, 128, 10);
    }

    [Fact]
    public async Task Several_interfaces_share_one_socket()
    {
        string path = Paths.Socket();
        var ids = new uint[] { 0, 7 };
        using var listener = MemifListener.Listen(path, ids.Select(id => new MemifOptions { SocketPath = path, InterfaceId = id, Log2RingSize = 6 }));
        foreach (uint id in ids.Reverse())
        {
            var accept = Task.Run(() => listener.Accept(Wait));
            using var slave = MemifSlave.Connect(new MemifOptions { SocketPath = path, InterfaceId = id, Log2RingSize = 6 }, Wait);
            using var master = (await accept);
            Assert.NotNull(master);
            Assert.Equal(id, master.InterfaceId);
        }
    }

    [Fact]
    public async Task Disconnect_carries_a_reason_and_the_slave_reconnects()
    {
        var (m, s) = Options(Paths.Socket());
        using var listener = MemifListener.Listen(m);
        for (int round = 0; round < 3; round++)
        {
            var accept = Task.Run(() => listener.Accept(Wait));
            using var slave = MemifSlave.Connect(s, Wait);
            using var master = (await accept)!;
            Frames.Send(slave, 0, Frames.Make(64, 1));
            Assert.True(master.Rx[0].TryReceive(out _, Wait));
            master.Disconnect("maintenance");
            // The slave notices on its next look at the control channel.
            Assert.True(SpinUntil(() => !slave.Poll()));
            Assert.Equal("peer disconnected: maintenance", slave.DisconnectReason);
        }
    }

    [Fact]
    public async Task A_second_slave_for_a_connected_id_is_refused()
    {
        var (m, s) = Options(Paths.Socket());
        using var pair = Pair.Connect(m, s);
        var second = Task.Run(() => pair.Listener.Accept(TimeSpan.FromSeconds(2)));
        var e = Assert.Throws<MemifException>(() => MemifSlave.Connect(s, Wait));
        Assert.Contains("Already connected", e.Message);
        Assert.Null((await second));
    }

    [Fact]
    public async Task Wrong_or_missing_secret_is_refused()
    {
        var (m, s) = Options(Paths.Socket(), o => o with { Secret = "open sesame" });
        using var listener = MemifListener.Listen(m);

        var accept = Task.Run(() => listener.Accept(TimeSpan.FromSeconds(2)));
        var wrong = Assert.Throws<MemifException>(() => MemifSlave.Connect(s with { Secret = "open barley" }, Wait));
        Assert.Contains("Incorrect secret", wrong.Message);
        var missing = Assert.Throws<MemifException>(() => MemifSlave.Connect(s with { Secret = null }, Wait));
        Assert.Contains("Secret required", missing.Message);
        Assert.Null((await accept));

        accept = Task.Run(() => listener.Accept(Wait));
        using var ok = MemifSlave.Connect(s, Wait);
        using var master = (await accept);
        Assert.NotNull(master);
    }

    [Fact]
    public async Task Unknown_interface_id_is_refused()
    {
        var (m, s) = Options(Paths.Socket());
        using var listener = MemifListener.Listen(m);
        var accept = Task.Run(() => listener.Accept(TimeSpan.FromSeconds(2)));
        var e = Assert.Throws<MemifException>(() => MemifSlave.Connect(s with { InterfaceId = 42 }, Wait));
        Assert.Contains("ID not found", e.Message);
        Assert.Null((await accept));
    }

    [Fact]
    public async Task Slave_retries_until_the_master_appears()
    {
        var (m, s) = Options(Paths.Socket());
        var slave = Task.Run(() => MemifSlave.Connect(s, TimeSpan.FromSeconds(10)));
        Thread.Sleep(300); // the slave is now retrying against a missing socket
        Assert.False(slave.IsCompleted);
        using var listener = MemifListener.Listen(m);
        using var master = listener.Accept(Wait);
        using var connected = (await slave);
        Assert.NotNull(master);
        Assert.True(connected.IsConnected);
    }

    [Fact]
    public void Stale_socket_file_is_replaced_but_a_live_one_is_not()
    {
        string path = Paths.Socket();
        var options = new MemifOptions { SocketPath = path, Role = MemifRole.Master };
        using (var first = MemifListener.Listen(options))
        {
            var e = Assert.Throws<MemifException>(() => MemifListener.Listen(options));
            Assert.Contains("in use", e.Message);
        }
        File.WriteAllText(path, "not a socket");
        var notSocket = Assert.Throws<MemifException>(() => MemifListener.Listen(options));
        Assert.Contains("not a socket", notSocket.Message);
        File.Delete(path);
    }

    private static bool SpinUntil(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (DateTime.UtcNow < deadline)
        {
            if (condition()) return true;
            Thread.Sleep(5);
        }
        return false;
    }
}
