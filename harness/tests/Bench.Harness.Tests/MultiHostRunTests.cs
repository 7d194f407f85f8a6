using System.Diagnostics;
using Bench.Harness.Processes;
using Bench.Harness.Results;

namespace Bench.Harness.Tests;

/// <summary>
/// Whole multi-host runs of the harness on the four-host test bed: one server host, three client
/// hosts, real sshd, real sockets between namespaces.
/// </summary>
[Collection("testbed")]
public class MultiHostRunTests(TestBed bed)
{
    private static string Harness => Path.Combine(AppContext.BaseDirectory, "bench.dll");

    private ManagedProcess StartHarness(string results, params string[] args) =>
        ManagedProcess.Start("harness", ["dotnet", Harness, "run", "--root", Repo.Root, "--hosts", bed.HostsPath, "--no-build",
            .. args.Contains("--repeats") ? Array.Empty<string>() : ["--repeats", "1"], "--warmups", "0", "--warmup-cap", "0", "--client-warmup", "0", "--results", results, .. args], Repo.Root);

    [TestBedFact]
    public async Task the_csharp_and_a_native_echo_run_with_the_server_and_clients_on_their_hosts_connections_split_and_nothing_left()
    {
        await Repo.BuiltAsync("csharp");
        await Repo.BuiltAsync("cpp-epoll");
        using var results = new TempDir();
        await using var run = StartHarness(results.Path, "--only", "csharp,cpp-epoll", "--workload", "burst", "--connections", "300");
        Assert.True(await run.Exited.WaitAsync(TimeSpan.FromMinutes(5)) == 0, run.StderrTail);
        var rows = ResultsCsv.Read(Path.Combine(results.Path, "latest", "runs.csv"));
        Assert.Equal(["cpp-epoll", "csharp"], rows.Select(r => r.Server).Distinct().Order());
        Assert.All(rows, r =>
        {
            Assert.Equal(RunStatus.Ok, r.Status);
            Assert.Equal(0, r.Failed);
            Assert.Equal(300, r.Ok);
            Assert.Equal(bed.H(0), r.ServerHost);
            Assert.Equal($"{bed.H(1)}:100 {bed.H(2)}:100 {bed.H(3)}:100", r.ClientHosts);
            Assert.Contains($"{bed.H(3)}:", r.HostUsage);
            Assert.NotNull(r.LatP99Us);
        });
        Assert.Contains($"Multi-host: the server on {bed.H(0)}", File.ReadAllText(Path.Combine(results.Path, "latest", "summary.md")));
        await RemoteProcessTests.AssertHostsEmptyWithin(bed, TimeSpan.FromSeconds(5));
    }

    [TestBedFact]
    public async Task the_rows_percentiles_are_those_of_the_three_client_hosts_kept_samples_concatenated()
    {
        await Repo.BuiltAsync("cpp-epoll");
        using var results = new TempDir();
        await using var run = StartHarness(results.Path, "--only", "cpp-epoll", "--workload", "burst", "--connections", "900", "--repeats", "2", "--keep-samples");
        Assert.True(await run.Exited.WaitAsync(TimeSpan.FromMinutes(5)) == 0, run.StderrTail);
        var set = Path.Combine(results.Path, "latest");
        var rows = ResultsCsv.Read(Path.Combine(set, "runs.csv"));
        Assert.Equal([1, 2], rows.Select(r => r.Repeat));
        foreach (var row in rows)
        {
            Assert.Equal(RunStatus.Ok, row.Status);
            // Each client host's own file, as it wrote it: its share of the connections, one sample each.
            var kept = bed.Hosts.Clients.Select(h => Path.Combine(set, LatencySamples.KeptFile(row, h.Name))).ToList();
            Assert.All(kept, f => Assert.Equal(300 * 8, new FileInfo(f).Length));
            // Their bytes end to end are one samples file of every request, whose figures are the harness's own statistics.
            var all = Path.Combine(results.Path, $"all-{row.Repeat}.bin");
            File.WriteAllBytes(all, kept.SelectMany(File.ReadAllBytes).ToArray());
            var histogram = LatencyHistogram.Record(LatencySamples.ReadFile(all).Values);
            Assert.Equal(900, histogram.Count);
            Assert.Equal(histogram.PercentileUs(50), row.LatP50Us);
            Assert.Equal(histogram.PercentileUs(90), row.LatP90Us);
            Assert.Equal(histogram.PercentileUs(99), row.LatP99Us);
            Assert.Equal(histogram.PercentileUs(99.9), row.LatP999Us);
            Assert.Equal(histogram.MaxUs, row.LatMaxUs);
            Assert.Equal(histogram.MeanUs, row.LatMeanUs);
        }
        await RemoteProcessTests.AssertHostsEmptyWithin(bed, TimeSpan.FromSeconds(5));
    }

    [TestBedFact]
    public async Task the_harness_killed_with_sigkill_mid_run_leaves_no_process_in_any_namespace()
    {
        await Repo.BuiltAsync("csharp");
        using var results = new TempDir();
        await using var run = StartHarness(results.Path, "--only", "csharp", "--workload", "persistent", "--connections", "30", "--duration", "60");
        // Wait until clients run on the client hosts (the server's host has one before them).
        var waited = Stopwatch.StartNew();
        while (bed.ProcessesInNamespaces().Count(p => !p.StartsWith(bed.H(0), StringComparison.Ordinal)) < 3 && waited.Elapsed < TimeSpan.FromSeconds(90))
            await Task.Delay(200);
        Assert.True(bed.ProcessesInNamespaces().Count > 3, "the clients never started");
        Process.GetProcessById(run.Pid).Kill(); // SIGKILL: the harness runs no code of its own
        await RemoteProcessTests.AssertHostsEmptyWithin(bed, TimeSpan.FromSeconds(10));
    }

    [TestBedFact]
    public async Task a_client_host_lost_mid_run_gives_a_failed_row_naming_it_and_a_clean_tear_down()
    {
        await Repo.BuiltAsync("csharp");
        using var results = new TempDir();
        await using var run = StartHarness(results.Path, "--only", "csharp", "--workload", "persistent", "--connections", "30", "--duration", "20");
        var waited = Stopwatch.StartNew();
        // The measured repeat's client on host 2 (not the verify step's probes): the host dies in the middle of it.
        while (!bed.ProcessesInNamespaces().Any(p => p.StartsWith(bed.H(2), StringComparison.Ordinal) && p.Contains("csharp-echo client") && p.Contains("--duration 20"))
               && waited.Elapsed < TimeSpan.FromSeconds(120))
            await Task.Delay(200);
        await Task.Delay(2000);
        // The host dies: every process in its namespace, its sshd included.
        var pids = TestBed.Run("ip", "netns", "pids", bed.H(2)).Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        TestBed.Run(["kill", "-KILL", .. pids]);
        try
        {
            await run.Exited.WaitAsync(TimeSpan.FromMinutes(3));
            var row = ResultsCsv.Read(Path.Combine(results.Path, "latest", "runs.csv")).First(r => r.Repeat == 1);
            Assert.Equal(RunStatus.ClientFailed, row.Status);
            Assert.Contains($"client on {bed.H(2)}: the host was lost (ssh exited 255)", row.Error);
            await RemoteProcessTests.AssertHostsEmptyWithin(bed, TimeSpan.FromSeconds(10));
        }
        finally
        {
            TestBed.Run("ip", "netns", "exec", bed.H(2), $"{bed.State}/sshd", "-o", $"ListenAddress={bed.Ip(2)}",
                "-o", $"PidFile={bed.State}/{bed.H(2)}/sshd.pid", "-E", $"{bed.State}/{bed.H(2)}/sshd.log");
        }
    }
}
