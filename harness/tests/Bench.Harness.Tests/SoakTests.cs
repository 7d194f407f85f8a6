using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Results;
using Bench.Harness.Run;
using Bench.Harness.Soak;
using Bench.Harness.Workloads;

namespace Bench.Harness.Tests;

/// <summary>The soak's leak detector against real servers: one that leaks on purpose and one that does not.</summary>
public class SoakTests
{
    [Fact]
    public async Task a_server_that_keeps_memory_and_a_descriptor_per_connection_is_reported_as_leaking()
    {
        // Every accepted connection leaves 256 KiB and a duplicate of its socket behind.
        var leaky = FakePrograms.ThreadedEchoServer("import os\nkept = []").Replace(
            "    c, _ = s.accept()\n", "    c, _ = s.accept()\n    kept.append((bytearray(256 * 1024), os.dup(c.fileno())))\n");
        Assert.Contains("kept.append", leaky);
        var (exit, report) = await SoakAsync(leaky);
        Assert.True(exit == 1, report);
        Assert.Contains("**leaks: resident memory, open descriptors grew steadily", report);
    }

    [Fact]
    public async Task a_server_that_gives_everything_back_is_not()
    {
        var (exit, report) = await SoakAsync(FakePrograms.ThreadedEchoServer());
        Assert.True(exit == 0, report);
        Assert.Contains("no leak", report);
        Assert.Matches(@"\| open descriptors \| \d+ +\| \d+ +\|", report);
    }

    [Fact]
    public void a_steady_saw_tooth_is_not_a_trend_and_a_slow_rise_under_it_is()
    {
        // Connections closing and reopening: descriptors go 100, 140, 100, 140... for ten minutes.
        var saw = Enumerable.Range(0, 300).Select(i => (i * 2.0, i % 2 == 0 ? 100.0 : 140)).ToList();
        Assert.False(LeakDetector.Judge("fds", "", saw, 60, floor: 8, share: 0.05).Leaks);
        var rising = saw.Select(p => (p.Item1, p.Item2 + p.Item1 / 10)).ToList(); // one more every 10 s
        var trend = LeakDetector.Judge("fds", "", rising, 60, floor: 8, share: 0.05);
        Assert.True(trend.Leaks, $"growth {trend.Growth}, p {trend.P}");
        Assert.Equal(54, trend.Growth, 0); // 540 s after the warm-up at 0.1 a second
        Assert.Equal(27, trend.LastHalfGrowth, 0);
    }

    [Fact]
    public void a_heap_that_rises_to_its_size_and_then_swings_there_settles_and_does_not_leak()
    {
        // csharp-pipelines at 1,000 connections: grows for eight minutes, then a collection saw tooth around its level.
        var heap = Enumerable.Range(0, 450).Select(i => (i * 2.0, Math.Min(i * 2.0, 480) * 5 + (i % 30 < 15 ? 0 : 800))).ToList();
        var trend = LeakDetector.Judge("resident memory", "MiB", heap, 60, floor: 4, share: 0.05);
        Assert.True(trend.Settled, $"growth {trend.Growth} p {trend.P}, second half {trend.LastHalfGrowth} p {trend.LastHalfP}");
        Assert.False(trend.Leaks);
        Assert.Equal("rose, then settled", trend.Verdict);
        // The same series with a steady 1 MiB a second on top (a fifth of the first rise's pace) is a leak.
        var leak = heap.Select(p => (p.Item1, p.Item2 + p.Item1)).ToList();
        Assert.True(LeakDetector.Judge("resident memory", "MiB", leak, 60, floor: 4, share: 0.05).Leaks);
    }

    [Theory]
    [InlineData("cpp-epoll", "persistent", "cpp-epoll")]
    [InlineData("csharp-grpc", "grpc-unary", "csharp-grpc")]
    [InlineData("go-grpc", "grpc-unary", "csharp-grpc")]      // no client of its own: the one load client
    [InlineData("python-grpc", "grpc-unary", "csharp-grpc")]
    public void a_soak_loads_a_server_with_its_own_client_or_else_the_one_the_suite_loads_it_with(string server, string workload, string client)
    {
        var impl = Repo.Catalog.Select([server])[0];
        var cell = SoakCommand.Cell(Repo.Catalog, impl, impl.Workloads.Single(w => w.Name == workload), connections: 1000);
        Assert.NotNull(cell);
        Assert.Equal((server, client, 1000), (cell.Server.Name, cell.Load.Client!.Name, cell.Connections));
        Assert.True(cell.InFlight >= 1000, $"{cell.InFlight} in flight over 1000 connections");
    }

    private static async Task<(int Exit, string Report)> SoakAsync(string serverScript)
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("server.py"), serverScript);
        var cpp = await Repo.BuiltAsync("cpp-epoll");
        var server = new Implementation("soaked", "Python", "a test server", dir.Path, new BuildSpec(Toolchains.Python),
            ["python3", "server.py"], cpp.ClientCommand, [Transports.Tcp], [Workload.Get<Persistent>()], false, cpp.ClientProgram);
        var e = new Experiment(server, LoadGenerator.ClientOf(server), Transports.Tcp, Workload.Get<Persistent>(), 40, 40, 100, 0, 1);
        var settings = new SoakSettings(TimeSpan.FromSeconds(25), TimeSpan.FromSeconds(0.25), RunSeconds: 1, ServerCpus: "0", ClientCpus: "1");
        var exit = await SoakCommand.RunAsync(e, settings, dir.File("results"), CancellationToken.None);
        var set = Directory.GetDirectories(dir.File("results")).Single();
        Assert.True(File.Exists(Path.Combine(set, "footprint.csv")) && File.Exists(Path.Combine(set, "soak-memory.png")));
        return (exit, File.ReadAllText(Path.Combine(set, "soak.md")));
    }
}
