using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Bench.Epoll.Tests;

/// <summary>What csharp-epoll's server does that the harness's conformance suite does not check.</summary>
public sealed partial class ServerTests
{
    // The runtime holds about 60 descriptors; 128 leaves it room to start and makes the
    // connections below several times too many.
    private const int DescriptorLimit = 128;

    [Fact]
    public async Task Out_of_descriptors_it_sheds_new_connections_serves_what_it_has_and_accepts_again()
    {
        // sh's ulimit sets the hard limit as well, so nothing can raise the soft one back.
        await using var server = await Server.StartAsync($"ulimit -n {DescriptorLimit} && exec");
        var held = new List<Socket>();
        try
        {
            using var first = await server.ConnectAsync();
            await Server.AssertEchoesAsync(first, 100, seed: 1);

            // The kernel completes every handshake (the backlog is large); the server accepts
            // until EMFILE, then closes each new connection at once with its spare descriptor
            // (cpp-epoll's way): the peer sees an end, not a hang.
            for (int i = 0; i < 3 * DescriptorLimit; i++) held.Add(await server.ConnectAsync());
            Assert.True(await server.WaitForStderrAsync(l => l.Contains("accept: too many open files")),
                $"the server never said it ran out of descriptors\n{server}");
            // Each held connection is watched for its end; the ones the server shed end (one turn of
            // its loop each), the ones it accepted before the limit stay open.
            var ended = 0;
            using var watching = new CancellationTokenSource();
            var watches = held.Select(async s =>
            {
                try
                {
                    if (await s.ReceiveAsync(new byte[1], SocketFlags.None, watching.Token) == 0) Interlocked.Increment(ref ended);
                }
                catch (OperationCanceledException) { }
                catch (SocketException) { Interlocked.Increment(ref ended); }
            }).ToList();
            var expected = held.Count - DescriptorLimit; // at most DescriptorLimit can be open in the server
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (Volatile.Read(ref ended) < expected && waited.Elapsed < Server.Bound) await Task.Delay(20);
            Assert.True(Volatile.Read(ref ended) >= expected, $"{ended} of {held.Count} connections shed, expected at least {expected}\n{server}");
            watching.Cancel();
            await Task.WhenAll(watches);
            Assert.True(ended < held.Count, "every connection was shed; the server held none");

            // What it holds is still served.
            await Server.AssertEchoesAsync(first, 1000, seed: 2);

            foreach (var s in held) s.Dispose();
            held.Clear();
            first.Dispose();
            // Descriptors free up as the server sees those closes; a fresh connection lands.
            using var fresh = await server.ConnectAsync();
            await Server.AssertEchoesAsync(fresh, 64 * 1024, seed: 3);
            Assert.Single(server.StderrLines, l => l.Contains("accept:")); // said once, not once per shed connection
            Assert.Equal(0, await server.StopAsync());
        }
        finally
        {
            foreach (var s in held) s.Dispose();
        }
    }

    [Fact]
    public async Task It_runs_one_loop_per_cpu_in_its_affinity_mask()
    {
        foreach (var (cpus, loops) in new[] { ("0", 1), ("0,1", 2) })
        {
            if (loops > Environment.ProcessorCount) continue; // a 1-CPU machine cannot allow two
            await using var server = await Server.StartAsync($"exec taskset -c {cpus}");
            var names = Directory.GetDirectories($"/proc/{server.Pid}/task").Select(t => File.ReadAllText(Path.Combine(t, "comm")).Trim());
            Assert.Equal(loops, names.Count(n => n.StartsWith("epoll loop", StringComparison.Ordinal)));
            // Every loop watches the one listener (EPOLLEXCLUSIVE): connections land and are echoed.
            var sockets = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => server.ConnectAsync()));
            await Task.WhenAll(sockets.Select((s, i) => Server.AssertEchoesAsync(s, 100, seed: i)));
            foreach (var s in sockets) s.Dispose();
            Assert.Equal(0, await server.StopAsync());
        }
    }

    /// <summary>
    /// A shell starts a background job with SIGINT ignored, and the runtime keeps a signal ignored
    /// that was ignored at start; cpp-epoll takes SIGINT with sigwait regardless. So does this one.
    /// </summary>
    [Fact]
    public async Task It_stops_on_SIGINT_even_when_started_with_SIGINT_ignored()
    {
        await using var server = await Server.StartAsync("trap '' INT && exec");
        using var held = await server.ConnectAsync(); // an open connection must not keep it alive
        var stopping = System.Diagnostics.Stopwatch.StartNew();
        Assert.Equal(0, await server.StopAsync(signal: 2));
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(1), $"took {stopping.Elapsed.TotalMilliseconds:F0} ms");
    }

    /// <summary>
    /// The design's claim: nothing on the managed heap per request, back-pressure included (a slow
    /// reader's pending bytes are native memory). The server says at exit what the whole process
    /// allocated after READY; it must not grow with the requests served.
    /// </summary>
    [Fact]
    public async Task Serving_allocates_nothing_on_the_managed_heap_per_request()
    {
        await using var server = await Server.StartAsync();
        var sockets = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => server.ConnectAsync()));
        const int Rounds = 500;
        await Task.WhenAll(sockets.Select(async (s, i) =>
        {
            for (int k = 0; k < Rounds; k++) await Server.AssertEchoesAsync(s, 100, seed: i + k);
        }));
        // Bulk payloads: partial sends, pending bytes, EPOLLOUT resumes.
        await Task.WhenAll(sockets.Take(4).Select((s, i) => Server.AssertEchoesAsync(s, 4 << 20, seed: i)));
        foreach (var s in sockets) s.Dispose();
        Assert.Equal(0, await server.StopAsync());

        var line = server.StderrLines.Single(l => l.Contains("allocated on the managed heap"));
        var match = Allocated().Match(line);
        Assert.True(match.Success, line);
        // 10,000 requests and 16 MiB echoed; what the signal's handling allocates is a few hundred bytes.
        Assert.InRange(long.Parse(match.Groups["bytes"].Value), 0, 8 * 1024);
        Assert.Equal("0", match.Groups["collections"].Value);
    }

    [GeneratedRegex(@"served; (?<bytes>\d+) bytes allocated on the managed heap after READY, (?<collections>\d+) collections")]
    private static partial Regex Allocated();
}
