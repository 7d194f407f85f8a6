using Bench.Harness.Report;
using Bench.Harness.Results;

namespace Bench.Harness.Tests;

public class CompareTests
{
    private static IEnumerable<RunRecord> Runs(string server, string workload, params double[] figures) =>
        figures.Select((f, i) => new RunRecord
        {
            RunId = "x", Server = server, Client = server, Workload = workload, Connections = 100, PayloadBytes = 100, Repeat = i + 1,
            Status = RunStatus.Ok, Ok = 100, WallMs = workload == "burst" ? f : 1000, ReqPerS = workload == "burst" ? 100 / f * 1000 : f,
            LatP99Us = 500,
        });

    [Fact]
    public void known_regression_is_flagged_and_known_non_change_is_not()
    {
        // rust got 30% slower in every repeat; cpp moved within its own noise.
        var before = Runs("rust", "persistent", 100_000, 101_000, 99_000, 100_500, 99_500)
            .Concat(Runs("cpp", "burst", 600, 640, 610, 630, 620)).ToList();
        var after = Runs("rust", "persistent", 70_000, 71_000, 69_000, 70_500, 69_500)
            .Concat(Runs("cpp", "burst", 615, 605, 635, 625, 645)).ToList();

        var c = Comparison.Compute(before, after, threshold: 0.10, alpha: 0.05);

        var rust = c.Rows.Single(r => r.Experiment.StartsWith("rust") && r.Figure == "req/s");
        Assert.Equal(Verdict.Regression, rust.Verdict);
        Assert.Equal(-0.30, rust.Change, 2);
        Assert.True(rust.P < 0.01);
        var cpp = c.Rows.Single(r => r.Experiment.StartsWith("cpp") && r.Figure == "wall ms");
        Assert.Equal(Verdict.Same, cpp.Verdict);
        Assert.All(c.Rows.Where(r => r.Figure == "p99 us"), r => Assert.Equal(Verdict.Same, r.Verdict));
    }

    [Fact]
    public void compare_writes_markdown_and_a_chart_and_the_command_exits_1_on_regression()
    {
        using var dir = new TempDir();
        var baseCsv = new ResultsCsv(dir.File("base.csv"));
        var newCsv = new ResultsCsv(dir.File("new.csv"));
        foreach (var r in Runs("rust", "burst", 600, 610, 620, 630, 640)) baseCsv.Append(r);
        foreach (var r in Runs("rust", "burst", 900, 910, 920, 930, 940)) newCsv.Append(r);

        var exit = CommandLine.Commands.Compare(new CommandLine.ArgReader([baseCsv.Path, newCsv.Path, "--out", dir.Path, "--threshold", "20"]));

        Assert.Equal(1, exit);
        var md = File.ReadAllText(dir.File("compare.md"));
        Assert.Contains("**regression**", md);
        Assert.True(File.Exists(dir.File("compare.png")));
        // A threshold above the change turns the verdict into "no change".
        Assert.Equal(0, CommandLine.Commands.Compare(new CommandLine.ArgReader([baseCsv.Path, newCsv.Path, "--out", dir.Path, "--threshold", "60"])));
    }

    /// <summary>Rows of one experiment with a status (and an error when it is not ok).</summary>
    private static IEnumerable<RunRecord> With(IEnumerable<RunRecord> rows, string status, string error = "", double rate = 0) =>
        rows.Select(r =>
        {
            r.Status = status;
            r.Error = error;
            r.Rate = rate;
            if (status != RunStatus.Ok) (r.Ok, r.ReqPerS, r.WallMs, r.LatP99Us) = (0, null, null, null);
            return r;
        });

    /// <summary>Two fresh CSV files (a tag per pair: a ResultsCsv appends to what is there).</summary>
    private static (string Base, string New) WriteCsvs(TempDir dir, IEnumerable<RunRecord> before, IEnumerable<RunRecord> after, string tag = "")
    {
        var (b, n) = (new ResultsCsv(dir.File($"base{tag}.csv")), new ResultsCsv(dir.File($"new{tag}.csv")));
        foreach (var r in before) b.Append(r);
        foreach (var r in after) n.Append(r);
        return (b.Path, n.Path);
    }

    private static int Compare(TempDir dir, string baseCsv, string newCsv) =>
        CommandLine.Commands.Compare(new CommandLine.ArgReader([baseCsv, newCsv, "--out", dir.Path]));

    private static Comparison ComputeFromFiles(string baseCsv, string newCsv) =>
        Comparison.Compute(ResultsCsv.Read(baseCsv), ResultsCsv.Read(newCsv), threshold: 0.10, alpha: 0.05);

    [Fact]
    public void a_server_that_crashes_in_every_run_is_a_regression()
    {
        using var dir = new TempDir();
        var (baseCsv, newCsv) = WriteCsvs(dir,
            Runs("csharp", "persistent", 100_000, 101_000, 99_000, 100_500, 99_500).Concat(Runs("rust", "persistent", 90_000, 91_000, 89_000, 90_500, 89_500)),
            With(Runs("csharp", "persistent", 0, 0, 0, 0, 0), RunStatus.ServerFailed, "server exited with code 134 (SIGABRT) | before the run ended")
                .Concat(Runs("rust", "persistent", 90_000, 91_000, 89_000, 90_500, 89_500)));

        Assert.Equal(1, Compare(dir, baseCsv, newCsv));

        var c = ComputeFromFiles(baseCsv, newCsv);
        Assert.Equal((1, 0), (c.Broken, c.Regressions));
        var broken = c.Rows.Single(r => r.Verdict == Verdict.Broken);
        Assert.StartsWith("csharp", broken.Experiment);
        Assert.Contains("5 of 5 runs server-failed (base: none)", broken.Reason);
        Assert.Contains("server exited with code 134", broken.Reason);
        Assert.Contains("0 of 5 runs good (base: 5 of 5)", broken.Reason);
        Assert.DoesNotContain(c.Rows, r => r.Experiment.StartsWith("csharp") && r.IsFigure);
        Assert.All(c.Rows.Where(r => r.Experiment.StartsWith("rust")), r => Assert.Equal(Verdict.Same, r.Verdict));

        var md = File.ReadAllText(dir.File("compare.md"));
        Assert.Contains("**1 broken experiment, 0 figure regressions.**", md);
        Assert.Contains("| **broken**: 5 of 5 runs server-failed (base: none), first error: \"server exited with code 134 (SIGABRT) \\| before the run ended\"", md);
    }

    [Fact]
    public void fewer_good_repeats_than_the_base_is_a_regression()
    {
        using var dir = new TempDir();
        var rows = Runs("rust", "persistent", 100_000, 101_000, 99_000, 100_500, 99_500).ToList();
        // Two of five repeats failed requests: 3 of 5 good against 5 of 5.
        var (baseCsv, newCsv) = WriteCsvs(dir, rows,
            Runs("rust", "persistent", 100_000, 101_000, 99_000)
                .Concat(With(Runs("rust", "persistent", 0, 0), RunStatus.Failed, "12 requests failed: connection reset by peer").Select(r => { r.Repeat += 3; return r; })));

        Assert.Equal(1, Compare(dir, baseCsv, newCsv));
        var c = ComputeFromFiles(baseCsv, newCsv);
        var broken = c.Rows.Single(r => r.Verdict == Verdict.Broken);
        Assert.Contains("3 of 5 runs good (base: 5 of 5)", broken.Reason);
        Assert.Contains("2 of 5 runs failed (base: none)", broken.Reason);
        // The good repeats are still compared, figure by figure.
        Assert.Contains(c.Rows, r => r.IsFigure && r.Figure == "req/s" && r.After.Count == 3);

        // Repeats lost without a failure status (the harness stopped after three) count too.
        var (base2, new2) = WriteCsvs(dir, rows, Runs("rust", "persistent", 100_000, 101_000, 99_000), "2");
        Assert.Equal(1, Compare(dir, base2, new2));
        Assert.Contains("3 of 3 runs good (base: 5 of 5)", ComputeFromFiles(base2, new2).Rows.Single(r => r.Verdict == Verdict.Broken).Reason);
    }

    [Fact]
    public void an_experiment_of_the_base_missing_from_the_new_set_is_a_regression()
    {
        using var dir = new TempDir();
        var rust = Runs("rust", "persistent", 100_000, 101_000, 99_000, 100_500, 99_500).ToList();
        var (baseCsv, newCsv) = WriteCsvs(dir, rust.Concat(Runs("cpp", "burst", 600, 640, 610, 630, 620)),
            Runs("rust", "persistent", 100_000, 101_000, 99_000, 100_500, 99_500));

        Assert.Equal(1, Compare(dir, baseCsv, newCsv));
        var broken = ComputeFromFiles(baseCsv, newCsv).Rows.Single(r => r.Verdict == Verdict.Broken);
        Assert.StartsWith("cpp", broken.Experiment);
        Assert.Equal("missing from the new set (base: 5 of 5 runs good)", broken.Reason);
        Assert.Contains("missing from the new set", File.ReadAllText(dir.File("compare.md")));
    }

    [Fact]
    public void open_loop_experiments_are_compared_only_at_the_same_offered_rate()
    {
        using var dir = new TempDir();
        var before = With(Runs("rust", "persistent", 5000, 5000, 5000, 5000, 5000), RunStatus.Ok, rate: 5000).ToList();
        var slower = With(Runs("rust", "persistent", 3500, 3510, 3490, 3505, 3495), RunStatus.Ok, rate: 6000).ToList();

        // Each set derived its own rate: different loads, so not compared, and not a regression either.
        var (baseCsv, newCsv) = WriteCsvs(dir, before, slower);
        Assert.Equal(0, Compare(dir, baseCsv, newCsv));
        var c = ComputeFromFiles(baseCsv, newCsv);
        var row = Assert.Single(c.Rows);
        Assert.Equal(Verdict.NotComparable, row.Verdict);
        Assert.Equal("not comparable: offered rate 5000/s in base, 6000/s in new (run the new set with --rate 5000)", row.Reason);
        Assert.Equal((0, 0), (c.Broken, c.Regressions));
        Assert.Contains("not comparable: offered rate 5000/s in base, 6000/s in new", File.ReadAllText(dir.File("compare.md")));

        // At the same rate the figures are compared, and 30% fewer requests per second is a regression.
        var (base2, new2) = WriteCsvs(dir, before, slower.Select(r => { r.Rate = 5000; return r; }), "2");
        Assert.Equal(1, Compare(dir, base2, new2));
        var same = ComputeFromFiles(base2, new2);
        Assert.DoesNotContain(same.Rows, r => r.Verdict == Verdict.NotComparable);
        Assert.Equal(Verdict.Regression, same.Rows.Single(r => r.Figure == "req/s").Verdict);
    }

    [Fact]
    public void skipped_runs_are_reported_but_are_not_a_regression()
    {
        using var dir = new TempDir();
        var (baseCsv, newCsv) = WriteCsvs(dir, Runs("rust", "burst", 600, 640, 610, 630, 620),
            With(Runs("rust", "burst", 0, 0, 0, 0, 0), RunStatus.Skipped, "needs 10100 file descriptors; the limit here is 1024"));

        Assert.Equal(0, Compare(dir, baseCsv, newCsv));
        var c = ComputeFromFiles(baseCsv, newCsv);
        var row = Assert.Single(c.Rows);
        Assert.Equal(Verdict.Skipped, row.Verdict);
        Assert.Contains("5 of 5 runs skipped", row.Reason);
        Assert.Equal(0, c.Broken);
        Assert.Contains("| skipped: 5 of 5 runs skipped", File.ReadAllText(dir.File("compare.md")));
    }

    [Fact]
    public void figure_rows_state_n_p_and_the_hodges_lehmann_shift_with_its_interval()
    {
        var before = Runs("rust", "persistent", 100_000, 101_000, 99_000, 100_500, 99_500).ToList();
        var after = Runs("rust", "persistent", 70_000, 71_000, 69_000, 70_500, 69_500).ToList();
        var c = Comparison.Compute(before, after, threshold: 0.10, alpha: 0.05);
        var row = c.Rows.Single(r => r.Figure == "req/s");
        Assert.Equal(2.0 / 252, row.P, 12);
        Assert.Equal(-30_000, row.Shift!.Shift);
        Assert.Equal(-0.30, row.Shift.Relative, 3);
        Assert.True(row.Shift.RelativeCiLow < -0.30 && row.Shift.RelativeCiHigh > -0.30);

        using var dir = new TempDir();
        var md = File.ReadAllText(c.Write(dir.Path, dir.File("base.csv"), dir.File("new.csv")));
        Assert.Contains("exact two-sided Mann-Whitney U", md);
        Assert.Contains("| n (base/new) |", md);
        Assert.Contains("| 5/5 | 100000.0 | 70000.0 | -30.0% | 0.008 | -30.0% [", md);
    }
}
