using System.Text.Json;
using Bench.Harness.Build;
using Bench.Harness.Catalog;
using Bench.Harness.Machine;
using Bench.Harness.Report;
using Bench.Harness.Results;

namespace Bench.Harness.Run;

/// <summary>The pipeline of a suite: build, run every experiment, report. Returns the exit code.</summary>
public static class SuiteRunner
{
    public static async Task<int> RunAsync(string repoRoot, IReadOnlyList<PlannedExperiment> plan, RunSettings settings,
        string resultsRoot, bool build, CancellationToken cancel)
    {
        var runId = DateTime.UtcNow.ToString("yyyyMMdd-HHmmss");
        var dir = Path.Combine(resultsRoot, runId);
        Directory.CreateDirectory(dir);
        var csv = new ResultsCsv(Path.Combine(dir, "runs.csv"));
        var scratch = Directory.CreateTempSubdirectory("bench-").FullName;
        var progress = new Progress(plan.Sum(p => settings.Repeats) + (build ? Folders(plan).Count : 0));
        Console.Error.WriteLine($"bench: run {runId}: {plan.Count} experiments x {settings.Repeats} repeats after a warm-up, results in {dir}");

        var machine = await MachineFacts.ReadAsync();
        await File.WriteAllTextAsync(Path.Combine(dir, "machine.json"), JsonSerializer.Serialize(machine, new JsonSerializerOptions { WriteIndented = true }), cancel);

        var broken = new Dictionary<string, string>(); // folder -> why its build failed
        if (build)
            foreach (var (folder, spec) in Folders(plan))
            {
                var outcome = await Builder.BuildAsync(folder, spec, TimeSpan.FromMinutes(15), cancel);
                await File.WriteAllTextAsync(Path.Combine(dir, $"build-{Path.GetRelativePath(repoRoot, folder).Replace('/', '-')}.log"), outcome.Log, cancel);
                progress.Step($"build {Path.GetRelativePath(repoRoot, folder)} ({spec.Toolchain}): {(outcome.Succeeded ? $"ok in {outcome.Took.TotalSeconds:F0} s" : outcome.Error)}");
                if (!outcome.Succeeded) broken[folder] = outcome.Error!;
            }

        var runner = new ExperimentRunner(settings, csv, runId, scratch, progress);
        var rows = new List<RunRecord>();
        try
        {
            foreach (var planned in plan)
            {
                cancel.ThrowIfCancellationRequested();
                var e = planned.Experiment;
                if ((broken.GetValueOrDefault(e.Server.Folder) ?? broken.GetValueOrDefault(e.Client.Folder)) is { } why)
                {
                    var row = new RunRecord { RunId = runId, Timestamp = DateTimeOffset.UtcNow, Server = e.Server.Name, Client = e.LoadTool ?? e.Client.Name,
                        Transport = e.Transport, Workload = e.Workload, Connections = e.Connections, PayloadBytes = e.Payload,
                        Status = RunStatus.BuildFailed, Error = why };
                    csv.Append(row);
                    rows.Add(row);
                    continue;
                }
                if (planned.RateFrom is { } source)
                {
                    var closed = rows.Where(r => r.Status == RunStatus.Ok && r.Experiment == RowKey(source) && r.ReqPerS > 0).Select(r => r.ReqPerS!.Value).ToList();
                    if (closed.Count == 0) { progress.Note($"{e}: no closed-loop rate to derive the open-loop rate from; skipped"); continue; }
                    // Half the closed-loop peak: loaded enough to queue, not so loaded that it only measures overload.
                    e = e with { Rate = Math.Round(Statistics.Median(closed) / 2) };
                }
                rows.AddRange(await runner.RunAsync(e, cancel));
            }
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine($"bench: interrupted; {rows.Count} finished runs are kept in {csv.Path}");
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }

        ReportWriter.WriteFromCsv(csv.Path, dir);
        PointLatestAt(resultsRoot, runId);
        var bad = rows.Count(r => r.Status != RunStatus.Ok);
        Console.Error.WriteLine($"bench: {rows.Count} runs, {bad} not ok; summary: {Path.Combine(dir, "summary.md")}");
        return bad == 0 && !cancel.IsCancellationRequested ? 0 : 1;
    }

    private static (string, string, string, string, int, int, double) RowKey(Experiment e) =>
        (e.Server.Name, e.LoadTool ?? e.Client.Name, e.Transport, e.Workload, e.Connections, e.Payload, e.Rate);

    private static IReadOnlyList<(string Folder, BuildSpec Spec)> Folders(IReadOnlyList<PlannedExperiment> plan) =>
        plan.SelectMany(p => new[] { p.Experiment.Server, p.Experiment.Client })
            .Select(i => (i.Folder, i.Build)).Distinct().ToList();

    /// <summary>results/latest always names the newest result set.</summary>
    private static void PointLatestAt(string resultsRoot, string runId)
    {
        var latest = Path.Combine(resultsRoot, "latest");
        if (File.Exists(latest) || Directory.Exists(latest) || new FileInfo(latest).LinkTarget is not null) File.Delete(latest);
        File.CreateSymbolicLink(latest, runId);
    }
}
