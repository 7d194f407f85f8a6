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
}
