using System.Globalization;
using System.Text.Json;
using Bench.Harness.Build;
using Bench.Harness.Catalog;
using Bench.Harness.Machine;
using Bench.Harness.Report;
using Bench.Harness.Results;
using Bench.Harness.Run;

namespace Bench.Harness.Ab;

/// <summary>What an A/B run measures and how it judges.</summary>
public sealed record AbSettings(RunSettings Run, int Blocks, double Threshold, double Alpha);

/// <summary>One experiment as each side plans it (the same cell, from each revision's own catalog).</summary>
public sealed record AbPair(PlannedExperiment A, PlannedExperiment B)
{
    public override string ToString() => B.Experiment.ToString();
}

/// <summary>
/// Two revisions measured in one session, interleaved, on the same cores. Each experiment runs
/// in blocks; a block starts a fresh server of each side (each verified and warmed up, as in a
/// suite), then measures them A, B, B, A (the next block B, A, A, B), the idle server paused
/// with SIGSTOP so it takes no CPU. Slow drift of the machine (thermal, another tenant, the
/// page cache) then falls on both sides alike, and the fresh processes of every block put a
/// process's own luck (its JIT, its memory layout) into the spread instead of into the verdict.
/// Every run is a row of a/runs.csv or b/runs.csv the moment it ends; the verdict is
/// <see cref="Comparison"/>'s, read by <see cref="AbReport"/>.
/// </summary>
public static class AbRunner
{
    /// <summary>The side of each slot of a block: ABBA, then BAAB, so each side has the same mean position.</summary>
    public static IReadOnlyList<bool> SlotsOfBlock(int block) => block % 2 == 0 ? [true, false, false, true] : [false, true, true, false];

    /// <summary>The experiments both revisions plan, in B's order; what only one side plans is listed, not run.</summary>
    public static (IReadOnlyList<AbPair> Pairs, IReadOnlyList<string> OnlyA, IReadOnlyList<string> OnlyB) Match(
        IReadOnlyList<PlannedExperiment> a, IReadOnlyList<PlannedExperiment> b)
    {
        var byKey = a.GroupBy(Key).ToDictionary(g => g.Key, g => g.First());
        var pairs = b.Where(p => byKey.ContainsKey(Key(p))).Select(p => new AbPair(byKey[Key(p)], p)).ToList();
        var inB = b.Select(Key).ToHashSet();
        return (pairs, a.Where(p => !inB.Contains(Key(p))).Select(p => p.Experiment.ToString()).ToList(),
            b.Where(p => !byKey.ContainsKey(Key(p))).Select(p => p.Experiment.ToString()).ToList());
    }

    private static string Key(PlannedExperiment p)
    {
        var e = p.Experiment;
        var rate = p.RateFrom is null ? e.Rate.ToString(CultureInfo.InvariantCulture) : "derived";
        return $"{e.Server.Name}|{e.Load.Name}|{e.Transport}|{e.Workload.Name}|{e.Connections}|{e.InFlight}|{e.Payload}|{rate}";
    }

    public static async Task<int> RunAsync(Revision a, Revision b, IReadOnlyList<AbPair> pairs, AbSettings s, string resultsRoot,
        bool build, IReadOnlyList<string> notRun, CancellationToken cancel)
    {
        var (runId, dir) = SuiteRunner.NewResultSet(resultsRoot);
        var implementations = new[] { pairs.SelectMany(p => p.A.Experiment.Implementations).Distinct().ToList(),
                                      pairs.SelectMany(p => p.B.Experiment.Implementations).Distinct().ToList() };
        var runsPerSide = 2 * s.Blocks;
        var progress = new Progress(pairs.Count * 2 * runsPerSide + (build ? implementations.Sum(i => BuildStage.Folders(i).Count) : 0));
        var sides = new[] { new Side("A", a, dir, runId, s.Run, progress), new Side("B", b, dir, runId, s.Run, progress) };
        Console.Error.WriteLine($"bench: A/B run {runId}: A = {a}, B = {b}; {pairs.Count} experiments x {s.Blocks} blocks (A B B A, then B A A B), " +
            $"{runsPerSide} runs a side; results in {dir}");
        // The set's machine, and each side's (each side is a result set of its own).
        var machine = JsonSerializer.Serialize(await MachineFacts.ReadAsync(), new JsonSerializerOptions { WriteIndented = true });
        foreach (var folder in new[] { dir, sides[0].Dir, sides[1].Dir }) await File.WriteAllTextAsync(Path.Combine(folder, "machine.json"), machine, cancel);

        var interrupted = false;
        try
        {
            for (var i = 0; i < 2; i++)
                sides[i].Broken = build ? await BuildStage.BuildAsync(sides[i].Revision.Root, implementations[i], progress, sides[i].Dir, cancel)
                    : new Dictionary<string, string>();
            foreach (var pair in pairs)
            {
                cancel.ThrowIfCancellationRequested();
                await RunPairAsync(pair, sides, s, progress, cancel);
            }
        }
        catch (OperationCanceledException)
        {
            interrupted = true;
            Console.Error.WriteLine($"bench: interrupted; {sides.Sum(x => x.Rows.Count)} finished runs are kept in {sides[0].Csv.Path} and {sides[1].Csv.Path}");
        }
        finally
        {
            foreach (var side in sides) side.Dispose();
        }

        for (var i = 0; i < 2; i++)
            if (File.Exists(sides[i].Csv.Path))
                ReportWriter.Write(sides[i].Dir, await ResultSet.OfSuiteAsync(sides[i].Csv.Path, s.Run, sides[i].Revision.Root, implementations[i]));
        var comparison = Comparison.Compute(sides[0].Rows, sides[1].Rows, s.Threshold, s.Alpha);
        var report = AbReport.Write(dir, a, b, s, comparison, sides[0].Rows, sides[1].Rows, notRun);
        Console.WriteLine(File.ReadAllText(report));
        Console.Error.WriteLine($"bench: {AbReport.Headline(comparison, sides[0].Rows, sides[1].Rows)}; wrote {report}");
        return interrupted || comparison.Broken > 0 || comparison.Regressions > 0 ? 1 : 0;
    }

    /// <summary>Every block of one experiment; a side that cannot run (its build, its server) still leaves its rows.</summary>
    private static async Task RunPairAsync(AbPair pair, Side[] sides, AbSettings s, Progress progress, CancellationToken cancel)
    {
        var experiments = new[] { pair.A.Experiment, pair.B.Experiment };
        if (pair.B.RateFrom is not null)
        {
            // One offered rate for both sides, from A's closed loop in this session, so they are compared at the same load.
            if (pair.A.DerivedRate(sides[0].Rows) is not { } rate) { progress.Note($"{pair}: no closed-loop rate from A to derive the open-loop rate from; skipped"); return; }
            experiments = [.. experiments.Select(e => e with { Rate = rate })];
        }
        var repeats = new int[2];
        for (var block = 0; block < s.Blocks; block++)
        {
            var sessions = new ExperimentRunner.ServerSession?[2];
            try
            {
                for (var i = 0; i < 2; i++)
                {
                    if (sides[i].WhyNotBuilt(experiments[i]) is { } why)
                    {
                        if (block == 0) sides[i].Record(sides[i].Runner.Fail(experiments[i], RunStatus.BuildFailed, why));
                        continue;
                    }
                    var (session, failed) = await sides[i].Runner.PrepareAsync(experiments[i], cancel);
                    failed.ForEach(sides[i].Record);
                    session?.Server.Process.Pause();
                    sessions[i] = session;
                }
                foreach (var isA in SlotsOfBlock(block))
                {
                    var i = isA ? 0 : 1;
                    if (sessions[i] is not { } session) continue;
                    session.Server.Process.Resume();
                    var row = await sides[i].Runner.MeasureAsync(session, ++repeats[i], cancel);
                    sides[i].Record(row);
                    session.Server.Process.Pause();
                    if (row.Status == RunStatus.ServerFailed) { await session.DisposeAsync(); sessions[i] = null; }
                }
            }
            finally
            {
                for (var i = 0; i < 2; i++)
                {
                    if (sessions[i] is not { } session) continue;
                    session.Server.Process.Resume();
                    await sides[i].Runner.StopAsync(session);
                    await session.DisposeAsync();
                }
            }
        }
    }

    /// <summary>One revision's half of the run: its folder of the result set, its CSV, its scratch space, its rows.</summary>
    private sealed class Side : IDisposable
    {
        private readonly string _scratch = Directory.CreateTempSubdirectory("bench-ab-").FullName;

        public Side(string label, Revision revision, string setDir, string runId, RunSettings settings, Progress progress)
        {
            Revision = revision;
            Dir = Path.Combine(setDir, label.ToLowerInvariant());
            Directory.CreateDirectory(Dir);
            Csv = new ResultsCsv(Path.Combine(Dir, "runs.csv"));
            Runner = new ExperimentRunner(settings, Csv, $"{runId}-{label.ToLowerInvariant()}", _scratch, progress, $"{label}: ");
        }

        public Revision Revision { get; }
        public string Dir { get; }
        public ResultsCsv Csv { get; }
        public List<RunRecord> Rows { get; } = [];
        public IReadOnlyDictionary<string, string> Broken { get; set; } = new Dictionary<string, string>();

        public ExperimentRunner Runner { get; }

        public void Record(RunRecord row) => Rows.Add(row);

        public string? WhyNotBuilt(Experiment e) =>
            e.Implementations.Select(i => Broken.GetValueOrDefault(i.Folder)).FirstOrDefault(why => why is not null);

        public void Dispose() => Directory.Delete(_scratch, recursive: true);
    }
}
