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
            "--repeats", "1", "--warmups", "0", "--warmup-cap", "0", "--client-warmup", "0", "--results", results, .. args], Repo.Root);

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
            Assert.Equal("bench-h0", r.ServerHost);
            Assert.Equal("bench-h1:100 bench-h2:100 bench-h3:100", r.ClientHosts);
            Assert.Contains("bench-h3:", r.HostUsage);
            Assert.NotNull(r.LatP99Us);
        });
        Assert.Contains("Multi-host: the server on bench-h0", File.ReadAllText(Path.Combine(results.Path, "latest", "summary.md")));
        await RemoteProcessTests.AssertHostsEmptyWithin(TimeSpan.FromSeconds(5));
    }

    [TestBedFact]
    public async Task the_harness_killed_with_sigkill_mid_run_leaves_no_process_in_any_namespace()
    {
        await Repo.BuiltAsync("csharp");
        using var results = new TempDir();
        await using var run = StartHarness(results.Path, "--only", "csharp", "--workload", "persistent", "--connections", "30", "--duration", "60");
        // Wait until clients run on the client hosts (the server's host has one before them).
        var waited = Stopwatch.StartNew();
        while (TestBed.ProcessesInNamespaces().Count(p => !p.StartsWith("bench-h0", StringComparison.Ordinal)) < 3 && waited.Elapsed < TimeSpan.FromSeconds(90))
            await Task.Delay(200);
        Assert.True(TestBed.ProcessesInNamespaces().Count > 3, "the clients never started");
        Process.GetProcessById(run.Pid).Kill(); // SIGKILL: the harness runs no code of its own
        await RemoteProcessTests.AssertHostsEmptyWithin(TimeSpan.FromSeconds(10));
    }

    [TestBedFact]
    public async Task a_client_host_lost_mid_run_gives_a_failed_row_naming_it_and_a_clean_tear_down()
    {
        await Repo.BuiltAsync("csharp");
        using var results = new TempDir();
        await using var run = StartHarness(results.Path, "--only", "csharp", "--workload", "persistent", "--connections", "30", "--duration", "20");
        var waited = Stopwatch.StartNew();
        // The measured repeat's client on bench-h2 (not the verify step's probes): the host dies in the middle of it.
        while (!TestBed.ProcessesInNamespaces().Any(p => p.StartsWith("bench-h2", StringComparison.Ordinal) && p.Contains("csharp-echo client") && p.Contains("--duration 20"))
               && waited.Elapsed < TimeSpan.FromSeconds(120))
            await Task.Delay(200);
        await Task.Delay(2000);
        // The host dies: every process in its namespace, its sshd included.
        var pids = TestBed.Run("ip", "netns", "pids", "bench-h2").Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        TestBed.Run(["kill", "-KILL", .. pids]);
        try
        {
            await run.Exited.WaitAsync(TimeSpan.FromMinutes(3));
            var row = ResultsCsv.Read(Path.Combine(results.Path, "latest", "runs.csv")).First(r => r.Repeat == 1);
            Assert.Equal(RunStatus.ClientFailed, row.Status);
            Assert.Contains("client on bench-h2: the host was lost (ssh exited 255)", row.Error);
            await RemoteProcessTests.AssertHostsEmptyWithin(TimeSpan.FromSeconds(10));
        }
        finally
        {
            TestBed.Run("ip", "netns", "exec", "bench-h2", "/usr/sbin/sshd", "-f", $"{bed.State}/sshd_config", "-o", "ListenAddress=198.18.0.3",
                "-o", $"PidFile={bed.State}/bench-h2/sshd.pid", "-E", $"{bed.State}/bench-h2/sshd.log");
        }
    }
}
