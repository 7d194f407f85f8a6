using System.Runtime.InteropServices;
using System.Text.Json;
using Bench.Harness.Build;
using Bench.Harness.Machine;
using Bench.Harness.Report;
using Bench.Harness.Results;

namespace Bench.Harness.Run;

/// <summary>The pipeline of a suite: build, run every experiment, report. Returns the exit code.</summary>
public static partial class SuiteRunner
{
    public static async Task<int> RunAsync(string repoRoot, IReadOnlyList<PlannedExperiment> plan, RunSettings settings,
        string resultsRoot, bool build, CancellationToken cancel, Remote.MultiHost? hosts = null)
    {
        var (runId, dir) = NewResultSet(resultsRoot);
        var csv = new ResultsCsv(Path.Combine(dir, "runs.csv"));
        var implementations = plan.SelectMany(p => p.Experiment.Implementations).ToList();
        var progress = new Progress(plan.Sum(p => settings.Repeats) + (build ? BuildStage.Folders(implementations).Count : 0));
        Console.Error.WriteLine($"bench: run {runId}: {plan.Count} experiments x {settings.Repeats} repeats after a warm-up, results in {dir}");

        var machine = await MachineFacts.ReadAsync();
        await File.WriteAllTextAsync(Path.Combine(dir, "machine.json"), JsonSerializer.Serialize(machine, new JsonSerializerOptions { WriteIndented = true }), cancel);

        var rows = new List<RunRecord>();
        var scratch = Directory.CreateTempSubdirectory("bench-").FullName;
        try
        {
            var broken = build ? await BuildStage.BuildAsync(repoRoot, implementations, progress, dir, cancel) : new Dictionary<string, string>();
            IExperimentRunner runner = hosts is null ? new ExperimentRunner(settings, csv, runId, scratch, progress)
                : new Remote.MultiHostRunner(hosts, settings, csv, runId, progress);
            if (hosts is not null)
                await File.WriteAllTextAsync(Path.Combine(dir, "hosts.json"), JsonSerializer.Serialize(new { file = hosts.Hosts.Path, link = hosts.Hosts.Link, hosts = hosts.Facts },
                    new JsonSerializerOptions { WriteIndented = true }), cancel);
            foreach (var cell in SuitePlan.Cells(plan, settings.PairServers))
            {
                cancel.ThrowIfCancellationRequested();
                var ready = new List<Experiment>();
                foreach (var planned in cell)
                {
                    var e = planned.Experiment;
                    if (e.Implementations.Select(i => broken.GetValueOrDefault(i.Folder)).FirstOrDefault(why => why is not null) is { } why)
                    {
                        // An open-loop rate still to be derived (NaN) was never set: recorded as 0, as before.
                        rows.Add(runner.Fail(planned.RateFrom is null ? e : e with { Rate = 0 }, RunStatus.BuildFailed, why));
                        continue;
                    }
                    if (planned.RateFrom is not null)
                    {
                        if (planned.DerivedRate(rows) is not { } rate) { progress.Note($"{e}: no closed-loop rate to derive the open-loop rate from; skipped"); continue; }
                        e = e with { Rate = rate };
                    }
                    ready.Add(e);
                }
                if (ready.Count > 0) rows.AddRange(await runner.RunCellAsync(ready, cancel));
            }
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine($"bench: interrupted; {rows.Count} finished runs are kept in {csv.Path}");
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
            if (hosts is not null) await hosts.CloseAsync();
        }

        if (File.Exists(csv.Path)) ReportWriter.Write(dir, await ResultSet.OfSuiteAsync(csv.Path, settings, repoRoot, implementations));
        PointLatestAt(resultsRoot, runId);
        var bad = rows.Count(r => r.Status != RunStatus.Ok);
        Console.Error.WriteLine($"bench: {rows.Count} runs, {bad} not ok; summary: {Path.Combine(dir, "summary.md")}");
        return bad == 0 && !cancel.IsCancellationRequested ? 0 : 1;
    }

    /// <summary>
    /// A new results/&lt;run-id&gt;/ folder, its id the UTC start time; a suite started in the same
    /// second as another gets the next free suffix (-2, -3, ...), claimed atomically.
    /// </summary>
    public static (string RunId, string Dir) NewResultSet(string resultsRoot)
    {
        Directory.CreateDirectory(resultsRoot);
        var stamp = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss");
        for (var n = 1; ; n++)
        {
            var runId = n == 1 ? stamp : $"{stamp}-{n}";
            var dir = Path.Combine(resultsRoot, runId);
            // mkdir fails when the folder exists, so two suites can never claim one id.
            if (mkdir(dir, 0b111_101_101) == 0) return (runId, dir);
            if (Marshal.GetLastPInvokeError() != AlreadyExists)
            {
                Directory.CreateDirectory(dir); // throws with the real reason
                return (runId, dir);
            }
        }
    }

    private const int AlreadyExists = 17; // EEXIST

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkdir(string path, int mode);

    /// <summary>results/latest always names the newest result set.</summary>
    private static void PointLatestAt(string resultsRoot, string runId)
    {
        var latest = Path.Combine(resultsRoot, "latest");
        if (File.Exists(latest) || Directory.Exists(latest) || new FileInfo(latest).LinkTarget is not null) File.Delete(latest);
        File.CreateSymbolicLink(latest, runId);
    }
}
