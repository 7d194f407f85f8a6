using System.Diagnostics;
using Memif.Echo;
using Xunit;

namespace Memif.Tests;

/// <summary>
/// The echo's counts, honest: the server does not count a frame it dropped as echoed, and the
/// client counts every frame it sent once, as ok or failed, never both. The real classes of
/// Memif.Echo, in-process, against a peer the test plays over a real connection.
/// </summary>
public class EchoCountTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Server_counts_frames_its_full_tx_ring_could_not_take_as_dropped_not_echoed()
    {
        // 16 slots of 2048 bytes each way; a 5000-byte frame takes 3 of them.
        string path = Paths.Socket();
        var master = new MemifOptions { SocketPath = path, Role = MemifRole.Master, InterfaceName = "m", Log2RingSize = 4, BufferSize = 2048 };
        var slave = master with { Role = MemifRole.Slave, InterfaceName = "s" };
        const int frames = 12;
        using var listener = MemifListener.Listen(master);
        using var stop = new CancellationTokenSource();
        var server = new EchoServer(slave, stop.Token);
        var serving = Task.Factory.StartNew(() => server.Run(() => { }), stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            using var m = listener.Accept(Bound);
            Assert.NotNull(m);
            // Send every frame and never read the echoes: the server's TX ring fills after 5
            // frames (15 slots), and each later frame finds 1 slot where it needs 3.
            for (ulong seq = 0; seq < frames; seq++)
            {
                var frame = Frames.Make(5000, seq);
                Assert.True(SpinUntil(() => m.Tx[0].TrySend(frame)), $"the server never took frame {seq - 1}");
                m.Tx[0].Flush();
            }
            // Every slot back from the server: it has taken every frame (and flushed its echoes before releasing them).
            Assert.True(SpinUntil(() => m.Tx[0].Free == m.Tx[0].RingSize), "the server did not take every frame");
            int echoes = 0;
            while (m.Rx[0].TryReceive(out _)) echoes++;
            m.Rx[0].Release();
            Assert.Equal(16 / 3, echoes);

            stop.Cancel();
            await serving.WaitAsync(Bound); // throws if the server did not stop
            Assert.Equal(echoes, server.Echoed);
            Assert.Equal(frames - echoes, server.Dropped);
        }
        finally
        {
            stop.Cancel();
            await Task.WhenAny(serving, Task.Delay(Bound));
        }
    }

    [Fact]
    public async Task Client_counts_an_echo_that_comes_back_after_the_timeout_as_late_not_ok_and_not_failed_twice()
    {
        string path = Paths.Socket();
        var master = new MemifOptions { SocketPath = path, Role = MemifRole.Master, InterfaceName = "m", Log2RingSize = 8 };
        using var pair = Pair.Connect(master, master with { Role = MemifRole.Slave, InterfaceName = "s" });
        string samples = Path.GetTempFileName();
        using var stop = new CancellationTokenSource();
        long received = 0;
        // The peer: holds the echo of frame 0 until frame 1 arrives. With a window of one frame,
        // the client sends frame 1 only once it has given frame 0 up as lost, so the echo of 0 is
        // late by construction, not by a race. Then it returns both and echoes the rest at once.
        var peer = Task.Factory.StartNew(() =>
        {
            var held = new List<byte[]>();
            while (held.Count < 2)
            {
                var frame = Frames.Receive(pair.Slave, 0, Bound);
                Assert.NotNull(frame);
                held.Add(Frames.Swapped(frame));
            }
            received = 2;
            foreach (var echo in held) Frames.Send(pair.Slave, 0, echo);
            var scratch = new byte[64 * 1024];
            while (!stop.IsCancellationRequested)
            {
                int moved = 0;
                while (pair.Slave.Rx[0].TryReceive(out var packet))
                {
                    int n = packet.CopyTo(scratch);
                    EthernetFrame.SwapMacs(scratch.AsSpan(0, n));
                    Assert.True(pair.Slave.Tx[0].TrySend(scratch.AsSpan(0, n)));
                    moved++;
                }
                pair.Slave.Tx[0].Flush();
                pair.Slave.Rx[0].Release();
                received += moved;
                if (moved == 0) Thread.Yield();
            }
        }, stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            // The timeout fires long before the run ends, while the client is still sending.
            var settings = new LoadSettings(64, Window: 1, Duration: TimeSpan.FromSeconds(2), Timeout: TimeSpan.FromMilliseconds(200), samples);
            var r = new LoadClient(pair.Master, settings, CancellationToken.None).Run();
            stop.Cancel();
            await peer.WaitAsync(Bound); // throws if the peer failed or did not stop

            Assert.Equal(1, r.Failed);
            Assert.Equal(1, r.Late);
            Assert.Equal(0, r.Unexpected);
            Assert.Equal(received, r.Sent); // every frame sent reached the peer...
            Assert.Equal(r.Sent, r.Ok + r.Failed); // ...and is counted once
            Assert.True(r.Ok > 1, $"ok={r.Ok}");
            Assert.Equal(r.Ok * 64, r.Bytes);
            Assert.Equal(r.Ok * 8, new FileInfo(samples).Length); // one sample per ok frame
        }
        finally
        {
            stop.Cancel();
            await Task.WhenAny(peer, Task.Delay(Bound));
            File.Delete(samples);
        }
    }

    private static bool SpinUntil(Func<bool> condition)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < Bound)
        {
            if (condition()) return true;
            Thread.Sleep(1);
        }
        return false;
    }
}
