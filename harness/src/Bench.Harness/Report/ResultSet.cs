using System.Text.Json;
using System.Text.Json.Nodes;
using Bench.Harness.Build;
using Bench.Harness.Catalog;
using Bench.Harness.Machine;
using Bench.Harness.Microbench;
using Bench.Harness.Results;
using Bench.Harness.Run;

namespace Bench.Harness.Report;

/// <summary>What a reader of the results page needs to know about an implementation: its language, its design, its build log.</summary>
public sealed record ImplementationFacts(string Name, string Language, string Design, string BuildLog)
{
    public static ImplementationFacts Of(Implementation i, string repoRoot) => new(i.Name, i.Language, i.Design, BuildStage.LogFile(repoRoot, i.Folder));
}

/// <summary>How a suite was run: its settings (seconds for times), and the source revision it was built from.</summary>
public sealed record SuiteFacts(JsonObject Settings, SourceRevision? Source)
{
    public static SuiteFacts Of(RunSettings s, SourceRevision? source) => new(new JsonObject
    {
        ["repeats"] = s.Repeats,
        ["warmups"] = s.Warmups,
        ["server_cpus"] = s.ServerCpus,
        ["client_cpus"] = s.ClientCpus,
        ["ready_timeout_s"] = s.Ready.TotalSeconds,
        ["connection_timeout_s"] = s.ConnectionTimeout.TotalSeconds,
        ["steady_warmup_cap_s"] = s.WarmupCap.TotalSeconds,
        ["client_warmup_s"] = s.ClientWarmupS,
        ["keep_samples"] = s.KeepSamples,
    }, source);
}

/// <summary>
/// A result set as the reports read it: its rows, the machine, the microbenchmarks, and (when
/// a suite wrote results.json) how it was run and what its implementations are.
/// </summary>
public sealed record ResultSet(IReadOnlyList<RunRecord> Rows, MachineFacts? Machine, IReadOnlyList<MicrobenchRecord> Microbench)
{
    public SuiteFacts? Suite { get; init; }

    /// <summary>The folder the set was read from (its histogram logs are there); null for rows made in memory.</summary>
    public string? Folder { get; init; }
    public IReadOnlyList<ImplementationFacts> Implementations { get; init; } = [];

    /// <summary>
    /// Reads a set from its runs.csv or its results.json, with the files beside it. A runs.csv
    /// read this way keeps what the results.json beside it says about the suite, so redrawing
    /// a set loses nothing.
    /// </summary>
    public static ResultSet Read(string path)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var microbench = MicrobenchRecord.ReadAll(Path.Combine(dir, "microbench.csv"));
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return ResultsJson.Read(path) with { Microbench = microbench, Folder = dir };
        var set = new ResultSet(ResultsCsv.Read(path), ReadMachine(dir), microbench) { Folder = dir };
        var json = Path.Combine(dir, ResultsJson.FileName);
        if (!File.Exists(json)) return set;
        var written = ResultsJson.Read(json);
        return set with { Suite = written.Suite, Implementations = written.Implementations };
    }

    /// <summary>A suite's set as it ends: its rows, with how it was run and what it ran.</summary>
    public static async Task<ResultSet> OfSuiteAsync(string csvPath, RunSettings settings, string repoRoot, IEnumerable<Implementation> implementations) =>
        Read(csvPath) with
        {
            Suite = SuiteFacts.Of(settings, await SourceRevision.ReadAsync(repoRoot)),
            Implementations = [.. implementations.Distinct().Select(i => ImplementationFacts.Of(i, repoRoot))],
        };

    /// <summary>machine.json in a result set's folder, null when absent.</summary>
    public static MachineFacts? ReadMachine(string dir)
    {
        var path = Path.Combine(dir, "machine.json");
        return File.Exists(path) ? JsonSerializer.Deserialize<MachineFacts>(File.ReadAllText(path)) : null;
    }
}
