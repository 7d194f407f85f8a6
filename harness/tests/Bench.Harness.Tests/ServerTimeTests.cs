using Bench.Harness.LoadTools;
using Bench.Harness.Machine;
using Bench.Harness.Results;
using Bench.Harness.Run;
using Bench.Harness.Workloads;

namespace Bench.Harness.Tests;

/// <summary>
/// Where a server's time goes, measured on a real echo under its real client: context switches
/// in every row, system calls (perf stat) only when asked for, both over the client's timed window.
/// </summary>
public class ServerTimeTests
{
    private static async Task<RunRecord> RunAsync(bool countSyscalls)
    {
        var impl = await Repo.BuiltAsync("cpp-epoll");
        using var dir = new TempDir();
        var runner = new ExperimentRunner(new RunSettings(Repeats: 1, Warmups: 0, SteadyWarmupCap: TimeSpan.Zero, CountSyscalls: countSyscalls),
            new ResultsCsv(dir.File("runs.csv")), "test", dir.Path, new Progress(1, TextWriter.Null));
        var rows = await runner.RunAsync(new Experiment(impl, LoadGenerator.ClientOf(impl), "tcp", Workload.Get<Persistent>(), 20, 20, 100, 0, 1),
            CancellationToken.None);
        var row = Assert.Single(rows);
        Assert.True(row.Status == RunStatus.Ok, $"{row.Status}: {row.Error}");
        Assert.Equal(CpuWindows.Timed, row.CpuWindow);
        return row;
    }

    [Fact]
    public async Task syscalls_are_counted_over_the_timed_window_when_asked_and_switches_always()
    {
        Assert.True(SyscallCounter.WhyUnavailable() is null, $"this machine cannot count system calls: {SyscallCounter.WhyUnavailable()}");
        var counted = await RunAsync(countSyscalls: true);
        // Each echoed request costs the server at least a read and a write of its own (one request
        // in flight per connection): fewer system calls than requests would be a count that missed the window.
        Assert.True(counted.ServerSyscalls >= counted.Ok, $"{counted.ServerSyscalls} system calls for {counted.Ok} requests");
        Assert.NotNull(counted.ServerContextSwitches);
        Assert.NotNull(Figures.SyscallsPerRequest.Get(counted));

        var uncounted = await RunAsync(countSyscalls: false);
        Assert.Null(uncounted.ServerSyscalls);
        Assert.True(uncounted.ServerContextSwitches >= 0);
    }

    [Fact]
    public void perf_stat_output_is_read_and_a_never_enabled_count_is_none()
    {
        Assert.Equal(861, SyscallCounter.Parse(["# started on Wed Dec  2 03:53:07 2026", "", "861,,raw_syscalls:sys_enter,40119608,100.00,,"]));
        Assert.Null(SyscallCounter.Parse(["<not counted>,,raw_syscalls:sys_enter,0,100.00,,"]));
        Assert.Null(SyscallCounter.Parse([]));
    }
}
