using System.Diagnostics;
using System.Text;
using Xunit;
using Xunit.Abstractions;

namespace Memif.Tests;

/// <summary>
/// Interoperability with DPDK's own memif PMD: dpdk-testpmd (installed from Debian by
/// scripts/setup.sh) in macswap mode, once as memif server for our slave and once as memif
/// client for our master. Frames must come back with their MACs swapped.
/// </summary>
public sealed class DpdkInteropTests(ITestOutputHelper output) : IDisposable
{
    private const string Testpmd = "/usr/bin/dpdk-testpmd";
    private Process? _testpmd;
    private readonly StringBuilder _log = new();

    private string? _socket;

    private void StartTestpmd(string role, string socketPath, string extraDevargs = "", params string[] extraEal)
    {
        _socket = socketPath;
        Assert.True(File.Exists(Testpmd), $"{Testpmd} is missing: run scripts/setup.sh (Debian package dpdk)");
        var psi = new ProcessStartInfo(Testpmd)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        // No hugepages, no PCI, its own file prefix; both lcores on cpu 0 so it cannot starve us.
        foreach (string arg in (string[])
        [
            "--lcores", "0@0,1@0", "--no-huge", "--no-pci", "-m", "128", "--file-prefix", $"memif-test-{Environment.ProcessId}",
            "--log-level", "pmd.net.memif:debug",
            .. extraEal,
            socketPath.StartsWith('@')
                ? $"--vdev=net_memif0,role={role},id=0,socket={socketPath[1..]}{extraDevargs}" // abstract: DPDK's default kind
                : $"--vdev=net_memif0,role={role},id=0,socket={socketPath},socket-abstract=no{extraDevargs}",
            "--", "--no-mlockall", "--total-num-mbufs=2048", "--forward-mode=macswap", "--stats-period=1",
        ]) psi.ArgumentList.Add(arg);
        _testpmd = Process.Start(psi)!;
        _testpmd.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _testpmd.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _testpmd.BeginOutputReadLine();
        _testpmd.BeginErrorReadLine();
    }

    /// <summary>
    /// testpmd drops what arrives before forwarding starts, so keep offering frames until
    /// eight distinct ones have come back, each checked byte for byte.
    /// </summary>
    private static void ExpectMacSwappedEchoes(MemifConnection c)
    {
        var sent = new Dictionary<ulong, byte[]>();
        var verified = new HashSet<ulong>();
        var clock = Stopwatch.StartNew();
        ulong seq = 0;
        while (verified.Count < 8)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"only {verified.Count} of 8 echoes came back");
            var frame = Frames.Make(64, seq);
            // A DPDK client posts its receive buffers only after CONNECTED: until then our TX ring has no room.
            if (c.Tx[0].TrySend(frame))
            {
                c.Tx[0].Flush();
                sent[seq++] = frame;
            }
            var echo = Frames.Receive(c, 0, TimeSpan.FromMilliseconds(200));
            while (echo is not null)
            {
                ulong s = EthernetFrame.ReadSequence(echo);
                Assert.True(sent.ContainsKey(s), $"echo of a frame never sent ({s})");
                Assert.Equal(Frames.Swapped(sent[s]), echo);
                verified.Add(s);
                echo = Frames.Receive(c, 0, TimeSpan.FromMilliseconds(20));
            }
        }
        Assert.True(c.IsConnected);
    }

    /// <summary>
    /// testpmd creates its listening socket a moment before it registers the interface on it;
    /// a slave that is that quick hears "ID not found", so try again for a while.
    /// </summary>
    private static MemifConnection ConnectToTestpmd(MemifOptions options)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return MemifSlave.Connect(options, TimeSpan.FromSeconds(20));
            }
            catch (MemifException e) when (e.Message.Contains("ID not found") && clock.Elapsed < TimeSpan.FromSeconds(20))
            {
                Thread.Sleep(100);
            }
        }
    }

    [Fact]
    public void Testpmd_as_memif_server_echoes_for_our_slave()
    {
        string path = Paths.Socket();
        StartTestpmd("server", path);
        // Our slave retries until testpmd's socket exists.
        using var slave = ConnectToTestpmd(new MemifOptions { SocketPath = path, InterfaceName = "csharp-slave" });
        Assert.StartsWith("DPDK", slave.PeerName);
        Assert.Equal("net_memif0", slave.PeerInterfaceName);
        ExpectMacSwappedEchoes(slave);
    }

    [Fact]
    public void Testpmd_as_memif_client_echoes_for_our_master()
    {
        string path = Paths.Socket();
        // DPDK's client connects once, at start: our master must already listen.
        using var listener = MemifListener.Listen(new MemifOptions { SocketPath = path, Role = MemifRole.Master, InterfaceName = "csharp-master" });
        StartTestpmd("client", path);
        using var master = listener.Accept(TimeSpan.FromSeconds(20));
        Assert.True(master is not null, $"testpmd did not connect: {listener.LastRejection}");
        Assert.StartsWith("DPDK", master.PeerName);
        ExpectMacSwappedEchoes(master);
    }

    [Fact]
    public void Abstract_socket_names_match_dpdks()
    {
        // DPDK counts exactly 2 + 1 + strlen(name) address bytes for an abstract name; so must we.
        string path = "@" + Path.GetFileName(Paths.Socket());
        StartTestpmd("server", path);
        using var slave = ConnectToTestpmd(new MemifOptions { SocketPath = path });
        ExpectMacSwappedEchoes(slave);
    }

    [Fact]
    public void Testpmd_checks_our_secret()
    {
        string path = Paths.Socket();
        StartTestpmd("server", path, ",secret=s3cret");
        var e = Assert.Throws<MemifException>(() => ConnectToTestpmd(new MemifOptions { SocketPath = path, Secret = "guess" }));
        Assert.Contains("Incorrect secret", e.Message);
        using var slave = ConnectToTestpmd(new MemifOptions { SocketPath = path, Secret = "s3cret" });
        ExpectMacSwappedEchoes(slave);
    }

    [Fact]
    public void Testpmd_refuses_our_slave_with_a_wrong_ring_index()
    {
        // testpmd is configured with one queue; asking for a second ring must be refused, with DPDK's reason.
        string path = Paths.Socket();
        StartTestpmd("server", path);
        var e = Assert.Throws<MemifException>(() => ConnectToTestpmd(new MemifOptions { SocketPath = path, Queues = 2 }));
        Assert.Contains("Invalid ring index", e.Message);
    }

    [Fact]
    public void Our_master_refuses_testpmds_zero_copy_memory_which_cannot_be_sealed()
    {
        // A zero-copy DPDK client exports its EAL memory as regions 1..n; under --no-huge that is
        // memfd_create("nohuge", 0), which takes no seals. Unsealed, testpmd could shrink it under our
        // mapping (SIGBUS), so our master refuses it, with a reason, and keeps listening.
        string path = Paths.Socket();
        using var listener = MemifListener.Listen(new MemifOptions { SocketPath = path, Role = MemifRole.Master });
        StartTestpmd("client", path, ",zero-copy=yes", "--single-file-segments");
        var clock = Stopwatch.StartNew();
        while (listener.LastRejection is null && clock.Elapsed < TimeSpan.FromSeconds(20))
            Assert.Null(listener.Accept(TimeSpan.FromMilliseconds(200)));
        Assert.Equal("Region memfd cannot be sealed (made without MFD_ALLOW_SEALING)", listener.LastRejection);
    }

    public void Dispose()
    {
        if (_testpmd is { HasExited: false })
        {
            Signals.Send(_testpmd, Signals.SIGINT); // testpmd closes its port and removes its socket on SIGINT
            if (!_testpmd.WaitForExit(10_000)) _testpmd.Kill(entireProcessTree: true);
        }
        _testpmd?.WaitForExit();
        // testpmd's server may die as our slave leaves (a DPDK 22.11 bug) and leave its socket file.
        if (_socket is not null && !_socket.StartsWith('@')) File.Delete(_socket);
        // EAL leaves its runtime directory (config, mp_socket) behind.
        try { Directory.Delete($"/var/run/dpdk/memif-test-{Environment.ProcessId}", recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        lock (_log) output.WriteLine(_log.ToString());
        _testpmd?.Dispose();
    }
}
