using Bench.Harness.Machine;
using Bench.Harness.Report;
using Bench.Harness.Results;

namespace Bench.Harness.Tests;

/// <summary>Time the hypervisor took from a pinned core: read from /proc/stat, kept per row, named in the summary.</summary>
public class StealTests
{
    // /proc/stat's cpu lines: user nice system idle iowait irq softirq steal guest guest_nice.
    private static IReadOnlyDictionary<int, CpuTime> Stat(long user0, long idle0, long steal0, long user1, long idle1, long steal1) =>
        ProcFs.ParseCpuTimes([
            $"cpu  {user0 + user1} 0 0 {idle0 + idle1} 0 0 0 {steal0 + steal1} 0 0",
            $"cpu0 {user0} 0 0 {idle0} 0 0 0 {steal0} 0 0",
            $"cpu1 {user1} 0 0 {idle1} 0 0 0 {steal1} 0 0",
            "intr 1 2 3",
        ]);

    [Fact]
    public void steal_is_read_per_core_and_counted_inside_busy()
    {
        var before = Stat(100, 900, 0, 100, 900, 0);
        // cpu0: 50 jiffies of work, 30 stolen, 20 idle; cpu1: all 100 its own work.
        var after = Stat(150, 920, 30, 200, 900, 0);
        Assert.Equal(new CpuTime(180, 1100, 30), after[0]);
        Assert.Equal(0.3, ProcFs.StealFraction(before, after, 0), 9);
        Assert.Equal(0.8, ProcFs.BusyFraction(before, after, 0), 9);
        Assert.Equal(0, ProcFs.StealFraction(before, after, 1));
        Assert.Equal(1, ProcFs.BusyFraction(before, after, 1));
    }

    private static RunRecord Row(int repeat, double serverSteal, double clientSteal) => new()
    {
        RunId = "t", Server = "cpp-epoll", Client = "cpp-epoll", Transport = "tcp", Workload = "persistent", Connections = 1000, PayloadBytes = 100,
        Repeat = repeat, Status = RunStatus.Ok, Ok = 1000, ReqPerS = 100_000, ServerCoreSteal = serverSteal, ClientCoreSteal = clientSteal,
    };

    private static IReadOnlyList<string> Notes(params RunRecord[] rows) => Anomalies.Explain(ExperimentStats.Group(rows).Single()).ToList();

    [Fact]
    public void the_summary_names_an_experiment_whose_cores_were_stolen_from_and_not_one_whose_were_not()
    {
        var note = Assert.Single(Notes(Row(1, 0.01, 0.0), Row(2, 0.12, 0.06)));
        Assert.StartsWith("The hypervisor took up to 12% of the server's core and 6% of the client's in these runs (steal)", note);
        Assert.Empty(Notes(Row(1, 0.01, 0.04), Row(2, 0.0, 0.049)));
        Assert.Empty(Notes(new RunRecord { RunId = "t", Server = "s", Client = "c", Workload = "persistent", Repeat = 1, Status = RunStatus.Ok, Ok = 1 }));
    }
}
