using System.Diagnostics;
using System.Runtime.InteropServices;
using Memif.Native;
using Memif.Protocol;
using Xunit;

// Busy-polling peers and testpmd share the machine's few cores: run one test at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Memif.Tests;

internal static class Paths
{
    public static string Socket() => $"/tmp/memif-test-{Guid.NewGuid():N}"[..30] + ".sock";

    /// <summary>The echo binary built next to this test assembly (same configuration).</summary>
    public static string EchoBinary()
    {
        var baseDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        string tfm = baseDir.Name, config = baseDir.Parent!.Name;
        string root = baseDir.Parent!.Parent!.Parent!.Parent!.FullName;
        string path = Path.Combine(root, "Memif.Echo", "bin", config, tfm, "Memif.Echo");
        Assert.True(File.Exists(path), $"echo binary not built: {path}");
        return path;
    }

    public static int OpenFdCount() => Directory.GetFiles("/proc/self/fd").Length;
}

/// <summary>Frames and an in-process echo loop for one side of a connection.</summary>
internal static class Frames
{
    public static readonly byte[] A = [0x02, 0, 0, 0, 0, 0xAA];
    public static readonly byte[] B = [0x02, 0, 0, 0, 0, 0xBB];

    public static byte[] Make(int length, ulong seq)
    {
        var frame = new byte[length];
        EthernetFrame.WriteBenchmark(frame, B, A, seq, 0);
        return frame;
    }

    public static byte[] Swapped(byte[] frame)
    {
        var copy = (byte[])frame.Clone();
        EthernetFrame.SwapMacs(copy);
        return copy;
    }

    /// <summary>Echoes every frame with MACs swapped on its own thread until cancelled or the link drops.</summary>
    public static Task EchoLoop(MemifConnection c, CancellationToken stop) => Task.Factory.StartNew(() =>
    {
        var scratch = new byte[64 * 1024];
        while (!stop.IsCancellationRequested && c.IsConnected)
        {
            int moved = 0;
            for (int q = 0; q < Math.Min(c.Rx.Length, c.Tx.Length); q++)
            {
                while (c.Rx[q].TryReceive(out var packet))
                {
                    int n = packet.CopyTo(scratch);
                    EthernetFrame.SwapMacs(scratch.AsSpan(0, n));
                    Assert.True(c.Tx[q].TrySend(scratch.AsSpan(0, n)));
                    moved++;
                }
                c.Tx[q].Flush();
                c.Rx[q].Release();
            }
            if (moved > 0) continue;
            if (c.Options.Mode == MemifMode.Interrupt) c.Wait(20);
            else if (c.Poll()) Thread.Yield();
        }
    }, stop, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>Next frame on queue q, or null after the timeout. Interrupt mode sleeps on the eventfd only.</summary>
    public static byte[]? Receive(MemifConnection c, int q, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            if (c.Rx[q].TryReceive(out var packet))
            {
                var bytes = new byte[packet.Length];
                packet.CopyTo(bytes);
                c.Rx[q].Release();
                return bytes;
            }
            if (c.Options.Mode == MemifMode.Interrupt)
            {
                if (!c.Wait(Math.Max(1, (int)(timeout - deadline.Elapsed).TotalMilliseconds))) return null;
            }
            else if (!c.Poll()) return null;
            else Thread.Yield();
        }
        return null;
    }

    public static void Send(MemifConnection c, int q, byte[] frame)
    {
        Assert.True(c.Tx[q].TrySend(frame), "TX ring full");
        c.Tx[q].Flush();
    }

    /// <summary>One 64-byte frame out on queue 0 and its echo back, MACs swapped.</summary>
    public static void RoundTrip(MemifConnection c, ulong seq)
    {
        var frame = Make(64, seq);
        // A master's TX has room only once the slave has posted buffers, which it does after CONNECTED.
        Assert.True(SpinWait.SpinUntil(() => c.Tx[0].Free > 0, TimeSpan.FromSeconds(20)), "the peer never posted a buffer");
        Send(c, 0, frame);
        Assert.Equal(Swapped(frame), Receive(c, 0, TimeSpan.FromSeconds(20)));
    }

    /// <summary>Waits (generously) for the peer to end the link and returns why, as this side recorded it.</summary>
    public static string WaitForDisconnect(MemifConnection c)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(20))
            if (!c.Wait(100)) return c.DisconnectReason!;
        Assert.Fail("the peer never ended the link");
        return "";
    }
}

/// <summary>Both ends of an in-process pair: the master accepts on a task while the slave connects.</summary>
internal sealed class Pair : IDisposable
{
    public required MemifListener Listener { get; init; }
    public required MemifConnection Master { get; init; }
    public required MemifConnection Slave { get; init; }

    public static Pair Connect(MemifOptions master, MemifOptions slave)
    {
        var listener = MemifListener.Listen(master);
        var accept = Task.Run(() => listener.Accept(TimeSpan.FromSeconds(10)));
        var s = MemifSlave.Connect(slave, TimeSpan.FromSeconds(10));
        var m = accept.Result ?? throw new InvalidOperationException($"master refused: {listener.LastRejection}");
        return new Pair { Listener = listener, Master = m, Slave = s };
    }

    public void Dispose()
    {
        Slave.Dispose();
        Master.Dispose();
        Listener.Dispose();
    }
}

/// <summary>A raw control connection that can send anything: plays the misbehaving peer.</summary>
internal sealed unsafe class RawPeer : IDisposable
{
    public ControlChannel Channel { get; }

    internal RawPeer(ControlChannel channel) => Channel = channel;

    public static RawPeer Connect(string socketPath)
    {
        int fd = Libc.socket(Libc.AF_UNIX, Libc.SOCK_SEQPACKET | Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC, 0);
        Assert.Equal(0, UnixAddress.Parse(socketPath).Connect(fd));
        return new RawPeer(new ControlChannel(fd));
    }

    public Message Expect(MessageType type)
    {
        var r = Channel.Receive(5000);
        if (r.Fd >= 0) Libc.close(r.Fd); // the raw peer never maps what it is sent
        Assert.Equal(ReceiveStatus.Message, r.Status);
        Assert.Equal(type, r.Message!.Type);
        return r.Message;
    }

    /// <summary>The DISCONNECT reason the peer sent, then checks it closed the socket.</summary>
    public string ExpectDisconnect()
    {
        var m = Expect(MessageType.Disconnect);
        Assert.Equal(ReceiveStatus.Closed, Channel.Receive(5000).Status);
        return m.DisconnectReason;
    }

    public void Send(Message m, params int[] fds) => Assert.True(Channel.SendRaw(m.Bytes, fds));

    public void SendBytes(byte[] bytes) => Assert.True(Channel.SendRaw(bytes, []));

    public void Dispose() => Channel.Dispose();
}

/// <summary>A listening socket whose handshake the test writes by hand: plays a misbehaving master.</summary>
internal sealed unsafe class RawMaster : IDisposable
{
    private int _fd;
    public string Path { get; }

    public RawMaster()
    {
        Path = Paths.Socket();
        _fd = Libc.socket(Libc.AF_UNIX, Libc.SOCK_SEQPACKET | Libc.SOCK_CLOEXEC, 0);
        Assert.Equal(0, UnixAddress.Parse(Path).Bind(_fd));
        Assert.Equal(0, Libc.listen(_fd, 4));
    }

    public RawPeer Accept()
    {
        Assert.True(ControlChannel.WaitReadable(_fd, 5000), "slave never connected");
        int fd = Libc.accept4(_fd, null, null, Libc.SOCK_NONBLOCK | Libc.SOCK_CLOEXEC);
        Assert.True(fd >= 0);
        return new RawPeer(new ControlChannel(fd));
    }

    public void Dispose()
    {
        Libc.CloseQuietly(ref _fd);
        Libc.unlink(Path);
    }
}

internal static partial class Signals
{
    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);

    public static void Send(Process p, int signal) => kill(p.Id, signal);
    public const int SIGINT = 2;
    public const int SIGTERM = 15;
}
