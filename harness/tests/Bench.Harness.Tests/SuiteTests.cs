using Bench.Harness.Catalog;
using Bench.Harness.Report;
using Bench.Harness.Results;
using Bench.Harness.Run;
using Bench.Harness.Workloads;

namespace Bench.Harness.Tests;

public class SuiteTests
{
    [Fact]
    public async Task tiny_suite_runs_end_to_end_and_writes_csv_summary_and_charts()
    {
        using var results = new TempDir();
        await Repo.BuiltAsync("csharp");
        var options = new SuiteOptions { Only = ["csharp"], Connections = [50], DurationS = 0.3 };
        var plan = SuitePlan.Build(Repo.Catalog, options);
        Assert.Equal(3, plan.Count); // burst, persistent closed loop, persistent open loop at half its rate

        var exit = await SuiteRunner.RunAsync(Repo.Root, plan, new RunSettings(Repeats: 2, Warmups: 1, SteadyWarmupCap: TimeSpan.FromSeconds(4)), results.Path, build: false, CancellationToken.None);

        Assert.Equal(0, exit);
        var latest = Path.Combine(results.Path, "latest");
        var rows = ResultsCsv.Read(Path.Combine(latest, "runs.csv"));
        Assert.Equal(6, rows.Count);
        Assert.All(rows, r => Assert.Equal(RunStatus.Ok, r.Status));
        var bursts = rows.Where(r => r.Workload == "burst").ToList();
        Assert.All(bursts, r => Assert.Equal(50, r.Ok));
        // Spaced so a burst never pays for the last one's TIME_WAIT ports (EphemeralPorts.BurstSpacing).
        Assert.True(bursts[1].Timestamp - bursts[0].Timestamp >= EphemeralPorts.BurstSpacing);
        Assert.All(rows, r => Assert.True(r.LatP50Us > 0 && r.LatP999Us >= r.LatP50Us && r.ServerPeakRssKb > 0 && r.WarmupS > 0));
        var open = rows.Where(r => r.Rate > 0).ToList();
        Assert.Equal(2, open.Count);
        var closedMedian = Statistics.Median(rows.Where(r => r.Workload == "persistent" && r.Rate == 0).Select(r => r.ReqPerS!.Value).ToList());
        Assert.Equal(Math.Round(closedMedian / 2), open[0].Rate);

        var summary = File.ReadAllText(Path.Combine(latest, "summary.md"));
        Assert.Contains("| csharp | csharp | 50 conn |", summary);
        Assert.Contains("## Machine", summary);
        Assert.False(File.Exists(Path.Combine(latest, "burst-50-100-wall.png"))); // one bar compares nothing: not drawn
        // The latency spectrum, from the runs' HdrHistogram logs, closed and open loop.
        Assert.True(File.Exists(Path.Combine(latest, "spectrum-persistent-50-50-100.png")));
        Assert.True(File.Exists(Path.Combine(latest, "spectrum-persistent-50-50-100-open.png")));
        Assert.True(File.Exists(Path.Combine(latest, "machine.json")));
    }

    [Fact]
    public void default_plan_runs_own_pairs_then_the_reference_client_against_every_server()
    {
        var plan = SuitePlan.Build(Repo.Catalog, new SuiteOptions { ReferenceClient = "csharp" });
        var defaults = Repo.Catalog.All.Where(i => i.InDefaultSuite && i.HasServer && i.HasClient && Repo.SpeaksRawTcpEcho(i)).ToList();
        foreach (var impl in defaults)
            Assert.Contains(plan, p => p.Experiment.Server == impl && p.Experiment.Load.Client == impl && p.Experiment.Workload is Burst && p.Experiment.Connections == 10_000);
        var referenced = plan.Where(p => p.Experiment.Load.Name == "csharp" && p.Experiment.Server.Name != "csharp").Select(p => p.Experiment).ToList();
        foreach (var server in defaults.Where(i => i.Name != "csharp"))
        {
            Assert.Single(referenced, e => e.Server == server && e.Workload is Burst && e.Connections == 10_000);
            Assert.Single(referenced, e => e.Server == server && e.Workload.Name == "persistent" && e.Rate == 0);
        }
        Assert.DoesNotContain(plan, p => p.Experiment.Server.Name == "csharp-saea"); // not in the default suite
    }

    [Fact]
    public void cells_put_every_load_of_one_server_together_and_an_open_loop_alone()
    {
        var plan = SuitePlan.Build(Repo.Catalog, new SuiteOptions { Only = ["csharp", "csharp-grpc", "csharp-grpc-defaults"], Connections = [50] });
        var cells = SuitePlan.Cells(plan);
        Assert.Equal(plan.Count, cells.Sum(c => c.Count));
        // The plan lists h2load's cells after every own-client one; a cell holds both loads of a server.
        foreach (var server in new[] { "csharp-grpc", "csharp-grpc-defaults" })
        {
            var cell = Assert.Single(cells, c => c[0].Experiment.Server.Name == server && c[0].Experiment.Workload.Name == "grpc-unary" && c[0].Experiment.Transport == Transports.Tcp);
            Assert.Equal(["csharp-grpc", "h2load"], cell.Select(p => p.Experiment.Load.Name));
        }
        Assert.All(cells.Where(c => c.Any(p => p.RateFrom is not null)), c => Assert.Single(c));
        Assert.All(cells, c => Assert.Single(c.Select(p => (p.Experiment.Server, p.Experiment.Workload, p.Experiment.Connections, p.Experiment.Payload)).Distinct()));
    }

    [Fact]
    public async Task a_suite_interleaves_the_repeats_of_the_loads_of_one_server()
    {
        Assert.True(LoadTools.H2Load.IsInstalled, "h2load is missing: scripts/setup.sh installs nghttp2-client");
        using var results = new TempDir();
        await Repo.BuiltAsync("csharp-grpc");
        var plan = SuitePlan.Build(Repo.Catalog, new SuiteOptions { Only = ["csharp-grpc"], Workloads = ["grpc-unary"], Connections = [2], InFlight = 8, DurationS = 0.3 })
            .Where(p => p.Experiment.Transport == Transports.Tcp).ToList();
        Assert.Equal(["csharp-grpc", "h2load"], plan.Select(p => p.Experiment.Load.Name));

        var exit = await SuiteRunner.RunAsync(Repo.Root, plan, new RunSettings(Repeats: 3, Warmups: 1, SteadyWarmupCap: TimeSpan.Zero), results.Path, build: false, CancellationToken.None);

        Assert.Equal(0, exit);
        var rows = ResultsCsv.Read(Path.Combine(results.Path, "latest", "runs.csv"));
        Assert.All(rows, r => Assert.True(r.Status == RunStatus.Ok, r.Error));
        // Forward in odd rounds, backward in even ones, each row written as its run ends.
        Assert.Equal([("csharp-grpc", 1), ("h2load", 1), ("h2load", 2), ("csharp-grpc", 2), ("csharp-grpc", 3), ("h2load", 3)],
            rows.Select(r => (r.Generator, r.Repeat)));
        Assert.Equal(rows.OrderBy(r => r.Timestamp), rows);
    }

    [Fact]
    public void paired_servers_share_a_cell_for_each_shape_of_load()
    {
        var plan = SuitePlan.Build(Repo.Catalog, new SuiteOptions { Only = ["csharp-grpc", "csharp-grpc-defaults"], Workloads = ["grpc-unary"], Connections = [2], Payloads = [100, 65536] });
        var cells = SuitePlan.Cells(plan, acrossServers: true);
        Assert.Equal(plan.Count, cells.Sum(c => c.Count));
        foreach (var payload in new[] { 100, 65536 })
        {
            var cell = Assert.Single(cells, c => c[0].Experiment.Transport == Transports.Tcp && c[0].Experiment.Payload == payload);
            Assert.Equal([("csharp-grpc", "csharp-grpc"), ("csharp-grpc", "h2load"), ("csharp-grpc-defaults", "csharp-grpc"), ("csharp-grpc-defaults", "h2load")],
                cell.Select(p => (p.Experiment.Server.Name, p.Experiment.Load.Name)).Order());
        }
        Assert.All(cells, c => Assert.Single(c.Select(p => (p.Experiment.Transport, p.Experiment.Workload, p.Experiment.Connections, p.Experiment.Payload)).Distinct()));
    }

    [Fact]
    public async Task paired_servers_take_turns_and_each_server_of_a_name_has_its_own_socket()
    {
        using var results = new TempDir();
        await Repo.BuiltAsync("csharp-grpc");
        var plan = SuitePlan.Build(Repo.Catalog, new SuiteOptions { Only = ["csharp-grpc", "csharp-grpc-defaults"], Workloads = ["grpc-unary"], Connections = [2], InFlight = 8, DurationS = 0.3 })
            .Where(p => p.Experiment.Transport == Transports.Unix).ToList();
        Assert.Equal(["csharp-grpc", "csharp-grpc-defaults"], plan.Select(p => p.Experiment.Server.Name));

        var exit = await SuiteRunner.RunAsync(Repo.Root, plan, new RunSettings(Repeats: 3, Warmups: 1, SteadyWarmupCap: TimeSpan.Zero, PairServers: true), results.Path, build: false, CancellationToken.None);

        Assert.Equal(0, exit);
        var rows = ResultsCsv.Read(Path.Combine(results.Path, "latest", "runs.csv"));
        Assert.All(rows, r => Assert.True(r.Status == RunStatus.Ok, r.Error));
        Assert.Equal([("csharp-grpc", 1), ("csharp-grpc-defaults", 1), ("csharp-grpc-defaults", 2), ("csharp-grpc", 2), ("csharp-grpc", 3), ("csharp-grpc-defaults", 3)],
            rows.Select(r => (r.Server, r.Repeat)));
        // Servers of one name kept up at once (the loads of one cell) must not share a socket file.
        Assert.NotEqual(Bench.Harness.Processes.ServerProcess.Listen(Transports.Unix, "csharp-grpc", results.Path), Bench.Harness.Processes.ServerProcess.Listen(Transports.Unix, "csharp-grpc", results.Path));
    }

    [Fact]
    public void workload_option_selects_echo_and_variant_workloads_alike()
    {
        var grpc = SuitePlan.Build(Repo.Catalog, new SuiteOptions
        {
            Only = ["csharp", "csharp-grpc", "csharp-grpc-defaults"], Workloads = ["grpc-unary"], Payloads = [100, 65536],
        }).Select(p => p.Experiment).ToList();
        Assert.All(grpc, e => Assert.Equal("grpc-unary", e.Workload.Name));
        foreach (var server in new[] { "csharp-grpc", "csharp-grpc-defaults" })
            foreach (var payload in new[] { 100, 65536 })
                Assert.Single(grpc, e => e.Server.Name == server && e.Load.Name == "h2load" && e.Load.Client is null && e.Payload == payload);

        var burst = SuitePlan.Build(Repo.Catalog, new SuiteOptions { Only = ["csharp", "csharp-grpc"], Workloads = ["burst"] });
        Assert.NotEmpty(burst);
        Assert.All(burst, p => Assert.True(p.Experiment.Workload is Burst));
    }

    [Fact]
    public void a_grpc_server_without_a_client_is_loaded_by_the_shared_grpc_client_even_when_that_is_not_chosen()
    {
        foreach (var options in new[] { new SuiteOptions(), SuiteOptions.Quick })
        {
            var plan = SuitePlan.Build(Repo.Catalog, options with { Only = ["csharp-grpc-defaults"], Workloads = ["grpc-unary"] })
                .Select(p => p.Experiment).ToList();
            Assert.Contains(plan, e => e.Load.Client?.Name == "csharp-grpc" && e.Server.Name == "csharp-grpc-defaults");
            Assert.All(plan, e => Assert.Equal("csharp-grpc-defaults", e.Server.Name));
        }
        var unknown = Assert.Throws<ArgumentException>(() =>
            SuitePlan.Build(Repo.Catalog, new SuiteOptions { Only = ["csharp-grpc-defaults"], Workloads = ["grpc-unary"], GrpcClient = "no-such-client" }));
        Assert.Contains("--grpc-client", unknown.Message);
    }

    [Fact]
    public void matrix_plan_pairs_every_client_with_every_server()
    {
        var chosen = Repo.Catalog.All.Where(Repo.SpeaksRawTcpEcho).ToList();
        var plan = SuitePlan.Build(Repo.Catalog, new SuiteOptions { Only = chosen.Select(i => i.Name).ToList(), Matrix = true });
        var servers = chosen.Where(i => i.HasServer).ToList();
        var clients = chosen.Where(i => i.HasClient).ToList();
        Assert.Equal(servers.Count * clients.Count, plan.Count);
        foreach (var s in servers)
            foreach (var c in clients)
                Assert.Single(plan, p => p.Experiment.Server == s && p.Experiment.Load.Client == c);
    }

    [Fact]
    public void report_from_the_checked_in_sample_csv_draws_every_chart()
    {
        using var dir = new TempDir();
        var sample = Path.Combine(Repo.Root, "results", "sample", "runs.csv");
        ReportWriter.Write(dir.Path, ResultsCsv.Read(sample), ReportWriter.ReadMachine(sample));
        var charts = Directory.GetFiles(dir.Path, "*.png").Select(Path.GetFileName).ToList();
        string[] expected = ["cpu-per-request.png", "server-memory.png", "matrix-heatmap.png", "scaling-connections-burst.png",
            "scaling-connections-persistent.png", "scaling-payload-burst.png", "scaling-payload-persistent.png"];
        Assert.Empty(expected.Except(charts));
        Assert.Contains(charts, c => c!.EndsWith("-wall.png"));
        Assert.Contains(charts, c => c!.EndsWith("-latency.png"));
        Assert.Contains(charts, c => c!.EndsWith("-rps.png"));
        var summary = File.ReadAllText(Path.Combine(dir.Path, "summary.md"));
        Assert.All(charts, c => Assert.Contains($"({c})", summary));
    }
}
