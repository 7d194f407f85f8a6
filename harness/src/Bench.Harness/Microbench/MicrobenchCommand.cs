using System.Text;
using Bench.Harness.Processes;

namespace Bench.Harness.Microbench;

/// <summary>
/// `bench`: runs every BenchmarkDotNet project in the repository (`*Benchmarks.csproj`) and folds
/// their figures into a result set as microbench.csv, which the summary then shows.
/// </summary>
public static class MicrobenchCommand
{
    public static async Task<int> RunAsync(string root, string resultSet, bool full, string filter, CancellationToken cancel)
    {
        var projects = Directory.EnumerateFiles(root, "*Benchmarks.csproj", SearchOption.AllDirectories)
            .Where(p => !p.Contains("/bin/") && !p.Contains("/obj/")).Order(StringComparer.Ordinal).ToList();
        if (projects.Count == 0) { Console.Error.WriteLine("bench: no *Benchmarks.csproj in the repository"); return 1; }
        Directory.CreateDirectory(resultSet);
        var runId = Path.GetFileName(Path.GetFullPath(resultSet).TrimEnd('/'));
        var records = new List<Microbench.MicrobenchRecord>();
        var failed = 0;
        foreach (var (project, i) in projects.Select((p, i) => (p, i)))
        {
            var name = Path.GetFileNameWithoutExtension(project);
            var artifacts = Path.Combine(resultSet, "microbench", name);
            Console.Error.WriteLine($"[{i + 1}/{projects.Count}] bench: {name} ({(full ? "default" : "short")} job; BenchmarkDotNet prints its own progress)");
            var log = new StringBuilder();
            var gate = new Lock();
            void Log(string line) { lock (gate) log.AppendLine(line); }
            await using var run = ManagedProcess.Start($"bench {name}",
                ["dotnet", "run", "-c", "Release", "--project", project, "--", "--filter", filter, "--exporters", "csv", "--artifacts", artifacts,
                    .. full ? Array.Empty<string>() : ["--job", "short"]], root,
                onStdout: line => { Log(line); Console.Error.WriteLine(line); }, onStderr: Log);
            var exit = await run.Exited.WaitAsync(cancel);
            await File.WriteAllTextAsync(Path.Combine(resultSet, $"microbench-{name}.log"), log.ToString(), cancel);
            var reports = Directory.Exists(Path.Combine(artifacts, "results"))
                ? Directory.GetFiles(Path.Combine(artifacts, "results"), "*-report.csv") : [];
            if (exit != 0)
            {
                failed++;
                Console.Error.WriteLine($"bench: {name} failed (exit {exit}); see microbench-{name}.log");
            }
            else if (reports.Length == 0)
                Console.Error.WriteLine($"bench: {name}: no benchmark matches --filter {filter}");
            foreach (var report in reports.Order(StringComparer.Ordinal))
                records.AddRange(BdnReport.Read(report, runId, name));
        }
        var path = Path.Combine(resultSet, "microbench.csv");
        MicrobenchRecord.WriteAll(path, records);
        Console.Error.WriteLine($"bench: {records.Count} microbenchmarks written to {path}");
        var runs = Path.Combine(resultSet, "runs.csv");
        if (File.Exists(runs)) Report.ReportWriter.WriteFromCsv(runs, resultSet);
        return failed == 0 ? 0 : 1;
    }
}
