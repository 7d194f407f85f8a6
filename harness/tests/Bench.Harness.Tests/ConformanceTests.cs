using System.Net.Sockets;
using System.Net;
using Bench.Harness.Processes;
using Bench.Harness.Results;
using Bench.Harness.Run;

namespace Bench.Harness.Tests;

/// <summary>
/// The contract (docs/contract.md), checked against every implementation in the catalog with
/// real processes on real loopback sockets. A new implementation is covered by adding its manifest.
/// </summary>
public class ConformanceTests
{
    public static TheoryData<string> EchoServers => Repo.Names(i => i.HasServer && Repo.SpeaksRawTcpEcho(i));
    public static TheoryData<string> EchoClients => Repo.Names(i => i.HasClient && Repo.SpeaksRawTcpEcho(i));

    [Theory, MemberData(nameof(EchoServers))]
    public async Task server_echoes_payloads_from_1_byte_to_64KiB_exactly_and_honours_half_close(string name)
    {
        var (server, host, port) = await Processes.StartServerAsync(await Repo.BuiltAsync(name));
        await using var _ = server;
        Assert.Null(await EchoVerifier.VerifyAsync(host, port, TimeSpan.FromSeconds(30), CancellationToken.None));
    }

    [Theory, MemberData(nameof(EchoServers))]
    public async Task server_echoes_on_500_concurrent_connections_without_crossing_them(string name)
    {
        var (server, _, port) = await Processes.StartServerAsync(await Repo.BuiltAsync(name));
        await using var __ = server;
        var sockets = await Task.WhenAll(Enumerable.Range(0, 500).Select(async _ =>
        {
            var s = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await s.ConnectAsync(IPAddress.Loopback, port);
            return s;
        }));
        try
        {
            // All connections are open before any sends: the server must hold them at once.
            await Task.WhenAll(sockets.Select(async (s, i) =>
            {
                var sent = Enumerable.Range(0, 100).Select(j => (byte)((i + j) % 251)).ToArray();
                await s.SendAsync(sent);
                var got = new byte[100];
                for (var n = 0; n < 100;) n += await s.ReceiveAsync(got.AsMemory(n));
                Assert.Equal(sent, got);
            }));
        }
        finally { foreach (var s in sockets) s.Dispose(); }
    }

    [Theory, MemberData(nameof(EchoServers))]
    public async Task server_survives_every_torture_case_and_still_echoes_exactly(string name)
    {
        var (cases, _, _) = await Torture.TortureCommand.RunAsync(await Repo.BuiltAsync(name), idleConnections: 500, CancellationToken.None);
        Assert.All(cases, c => Assert.True(c.Passed, $"{name}: {c.Case}: {c.Detail}"));
    }

    [Theory, MemberData(nameof(EchoServers))]
    public async Task server_exits_with_status_0_promptly_on_sigterm(string name)
    {
        var (server, _, port) = await Processes.StartServerAsync(await Repo.BuiltAsync(name));
        await using var _ = server;
        using var held = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await held.ConnectAsync(IPAddress.Loopback, port); // an open connection must not keep it alive
        Assert.True(await server.StopAsync(), $"{name} ignored SIGTERM for {ServerProcess.StopGrace.TotalSeconds:F0} s");
        Assert.Equal(0, await server.Process.Exited);
    }

    [Theory, MemberData(nameof(EchoServers))]
    public async Task server_reports_a_port_in_use_and_exits_1(string name)
    {
        var impl = await Repo.BuiltAsync(name);
        using var taken = new Socket(SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        var port = ((IPEndPoint)taken.LocalEndPoint!).Port;
        await using var server = ManagedProcess.Start(name, [.. impl.ServerCommand!, "--host", "127.0.0.1", "--port", port.ToString()], impl.Folder);
        Assert.Equal(1, await server.Exited.WaitAsync(Processes.Patience));
        Assert.DoesNotContain(server.StdoutLines, ReadyLine.Matches);
        Assert.NotEmpty(server.StderrTail);
    }

    [Theory, MemberData(nameof(EchoClients))]
    public async Task client_burst_verifies_every_echo_and_writes_one_sample_per_request(string name)
    {
        var client = await Repo.BuiltAsync(name);
        var (server, _, port) = await Processes.StartServerAsync(await Repo.BuiltAsync("csharp"));
        await using var _ = server;
        using var dir = new TempDir();
        var (exit, result, stderr) = await Processes.RunClientAsync(client, port, "--connections", "300", "--payload", "100", "--workload", "burst", "--samples", dir.File("s.bin"));
        Assert.True(exit == 0, $"exit {exit}: {stderr}");
        Assert.NotNull(result);
        Assert.Equal((300L, 0L, 30_000L), (result.Ok, result.Failed, result.Bytes));
        Assert.True(result.WallNs > 0);
        Assert.Equal(300, LatencySamples.ReadFile(dir.File("s.bin")).Count);
    }

    [Theory, MemberData(nameof(EchoClients))]
    public async Task client_persistent_closed_and_open_loop_keep_every_connection_busy(string name)
    {
        var client = await Repo.BuiltAsync(name);
        var (server, _, port) = await Processes.StartServerAsync(await Repo.BuiltAsync("csharp"));
        await using var _ = server;
        using var dir = new TempDir();
        foreach (var rate in new[] { "0", "2000" })
        {
            var (exit, result, stderr) = await Processes.RunClientAsync(client, port, "--connections", "20", "--payload", "1000",
                "--workload", "persistent", "--duration", "0.5", "--rate", rate, "--samples", dir.File("s.bin"));
            Assert.True(exit == 0, $"rate {rate}: exit {exit}: {stderr}");
            Assert.NotNull(result);
            Assert.Equal(0, result.Failed);
            Assert.True(result.ConnMin >= 1, $"rate {rate}: some connection completed no request");
            Assert.Equal(result.Ok * 1000, result.Bytes);
            Assert.Equal(result.Ok, LatencySamples.ReadFile(dir.File("s.bin")).Count);
        }
    }

    [Theory, MemberData(nameof(EchoClients))]
    public async Task client_warms_up_then_opens_its_timed_window_with_a_line_and_reports_its_cpu_over_it(string name)
    {
        var client = await Repo.BuiltAsync(name);
        var (server, _, port) = await Processes.StartServerAsync(await Repo.BuiltAsync("csharp"));
        await using var _ = server;
        using var dir = new TempDir();
        foreach (var workload in new[] { "burst", "persistent" })
        {
            await using var run = ManagedProcess.Start($"client {name}", [.. client.ClientCommand!, "--host", "127.0.0.1", "--port", port.ToString(),
                "--connections", "20", "--workload", workload, "--duration", "0.5", "--rate", "2000", "--warmup", "0.3", "--samples", dir.File("s.bin")], client.Folder);
            Assert.Equal(0, await run.Exited.WaitAsync(Processes.Patience));
            var lines = run.StdoutLines.ToList();
            Assert.Single(lines, MeasuringLine.Matches);
            var result = ResultLine.Parse(lines.Single(ResultLine.Matches));
            Assert.True(lines.FindIndex(MeasuringLine.Matches) < lines.FindIndex(ResultLine.Matches), $"{workload}: MEASURING after RESULT");
            Assert.True(result.WindowUsage is { CpuMs: > 0 }, $"{workload}: no CPU reported over the window");
            // Nothing of the warm-up is counted: a burst's N, and exactly rate x duration held (the schedule restarts with the window).
            Assert.Equal(workload == "burst" ? 20 : 1000, result.Ok);
            Assert.Equal(result.Ok, LatencySamples.ReadFile(dir.File("s.bin")).Count);
        }
    }

    [Theory, MemberData(nameof(EchoClients))]
    public async Task client_counts_a_wrong_echo_as_failed_and_exits_1(string name)
    {
        var client = await Repo.BuiltAsync(name);
        await using var liar = new FakeServer(corrupt: true);
        var (exit, result, _) = await Processes.RunClientAsync(client, liar.Port, "--connections", "20", "--payload", "100", "--workload", "burst", "--timeout", "5");
        Assert.Equal(1, exit);
        Assert.NotNull(result);
        Assert.Equal((0L, 20L), (result.Ok, result.Failed));
    }

    [Theory, MemberData(nameof(EchoClients))]
    public async Task client_counts_a_connection_whose_echo_never_comes_as_failed_after_its_timeout(string name)
    {
        var client = await Repo.BuiltAsync(name);
        await using var silent = new FakeServer(corrupt: false);
        var (exit, result, stderr) = await Processes.RunClientAsync(client, silent.Port, "--connections", "5", "--payload", "100", "--workload", "burst", "--timeout", "1", "--warmup", "0");
        Assert.True(exit == 1, $"exit {exit}: {stderr}");
        Assert.NotNull(result);
        Assert.Equal((0L, 5L), (result.Ok, result.Failed));
    }

    [Theory, MemberData(nameof(EchoClients))]
    public async Task client_rejects_bad_arguments_with_status_2(string name)
    {
        var client = await Repo.BuiltAsync(name);
        var (exit, result, _) = await Processes.RunClientAsync(client, 9, "--connections", "many");
        Assert.Equal(2, exit);
        Assert.Null(result);
    }

    /// <summary>An echo server that flips one bit of everything it echoes, or one that reads and never answers.</summary>
    private sealed class FakeServer : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        public FakeServer(bool corrupt)
        {
            _listener.Start(1000);
            _loop = Task.Run(async () =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    var socket = await _listener.AcceptSocketAsync(_stop.Token);
                    _ = Task.Run(async () =>
                    {
                        using var s = socket;
                        var buffer = new byte[65536];
                        int n;
                        try
                        {
                            while ((n = await s.ReceiveAsync(buffer)) > 0)
                            {
                                if (!corrupt) continue;
                                buffer[0] ^= 1;
                                await s.SendAsync(buffer.AsMemory(0, n));
                            }
                        }
                        catch (SocketException) { }
                    });
                }
            });
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public async ValueTask DisposeAsync()
        {
            _stop.Cancel();
            _listener.Stop();
            try { await _loop; } catch (OperationCanceledException) { } catch (SocketException) { } catch (ObjectDisposedException) { }
        }
    }
}
