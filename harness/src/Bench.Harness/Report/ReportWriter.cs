using System.Globalization;
using System.Text;
using System.Text.Json;
using Bench.Harness.Machine;
using Bench.Harness.Microbench;
using Bench.Harness.Results;

namespace Bench.Harness.Report;

/// <summary>
/// Writes summary.md and the charts of a result set from its rows alone, so an old CSV can be
/// redrawn (`bench report`). The machine facts come from machine.json beside the CSV when present.
/// </summary>
public static class ReportWriter
{
    /// <summary>Redraws a result set from its files: runs.csv, and machine.json and microbench.csv beside it when present.</summary>
    public static string WriteFromCsv(string csvPath, string outDir)
    {
        var beside = Path.GetDirectoryName(Path.GetFullPath(csvPath))!;
        return Write(outDir, ResultsCsv.Read(csvPath), ReadMachine(csvPath), MicrobenchRecord.ReadAll(Path.Combine(beside, "microbench.csv")));
    }

    public static string Write(string dir, IReadOnlyList<RunRecord> rows, MachineFacts? machine, IReadOnlyList<MicrobenchRecord>? microbench = null)
    {
        Directory.CreateDirectory(dir);
        var stats = ExperimentStats.Group(rows);
        var caption = machine is null ? "machine unknown" : $"{machine.Caption}; server cpu {rows.FirstOrDefault()?.ServerCpus}, client cpu {rows.FirstOrDefault()?.ClientCpus}";
        var charts = Charts.DrawAll(dir, stats, caption);
        var md = Markdown(rows, stats, charts, machine, microbench ?? []);
        var path = Path.Combine(dir, "summary.md");
        File.WriteAllText(path, md);
        return path;
    }

    public static MachineFacts? ReadMachine(string csvPath)
    {
        var path = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(csvPath))!, "machine.json");
        return File.Exists(path) ? JsonSerializer.Deserialize<MachineFacts>(File.ReadAllText(path)) : null;
    }

    private static string Markdown(IReadOnlyList<RunRecord> rows, IReadOnlyList<ExperimentStats> stats,
        IReadOnlyList<(string File, string Title)> charts, MachineFacts? machine, IReadOnlyList<MicrobenchRecord> microbench)
    {
        var md = new StringBuilder();
        var runIds = string.Join(", ", rows.Select(r => r.RunId).Distinct());
        md.AppendLine($"# Echo benchmark results: {runIds}");
        md.AppendLine();
        var ok = rows.Count(r => r.Status == RunStatus.Ok);
        md.AppendLine($"{rows.Count} runs, {ok} ok, {rows.Count - ok} not ok. Figures are the median of the good repeats; " +
                      "the spread is min-max and the 95% confidence interval of the mean (Student t). Latency percentiles are computed by the " +
                      "harness from every request's raw sample. `bound` names the pinned core that was saturated (>= 90% busy).");
        md.AppendLine();

        foreach (var section in stats.GroupBy(s => Section(s)).OrderBy(g => g.Key.Order))
        {
            md.AppendLine($"## {section.Key.Title}");
            md.AppendLine();
            md.AppendLine("| server | client | load | payload | good/runs | wall ms median [min-max] (95% CI) | conn/s | req/s | p50 us | p99 us | p99.9 us | failed | server CPU us/req | client CPU us/req | server RSS MiB | bound | warm-up s |");
            md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
            foreach (var e in section.OrderBy(s => s.Connections).ThenBy(s => s.Payload).ThenBy(s => s.Rate).ThenBy(s => s.Server).ThenBy(s => s.Client))
            {
                md.AppendLine(string.Join(" | ",
                    $"| {e.Server}", e.Client, e.Load, Charts.Bytes(e.Payload), $"{e.Good.Count}/{e.Runs.Count}", Spread(e.Wall),
                    N(e.ConnPerS?.Median), N(e.ReqPerS?.Median), N(e.Of(r => r.LatP50Us)?.Median), N(e.Of(r => r.LatP99Us)?.Median),
                    N(e.Of(r => r.LatP999Us)?.Median), e.Failed.ToString(CultureInfo.InvariantCulture),
                    N(e.Of(r => r.ServerCpuUsPerReq)?.Median, "F1"), N(e.Of(r => r.ClientCpuUsPerReq)?.Median, "F1"),
                    N(e.Of(r => r.ServerPeakRssKb / 1024.0)?.Median, "F0"), e.Bound, N(e.Of(r => r.WarmupS)?.Median, "F1")) + " |");
            }
            md.AppendLine();
            var notes = section.SelectMany(e => Anomalies.Explain(e).Select(n => $"- **{e.Pair}, {e.Load}, {Charts.Bytes(e.Payload)}**: {n}")).ToList();
            if (notes.Count > 0)
            {
                md.AppendLine("What the counters say:");
                md.AppendLine();
                foreach (var n in notes) md.AppendLine(n);
                md.AppendLine();
            }
        }

        foreach (var line in LoadToolRatios(stats)) md.AppendLine(line);

        var fairness = stats.Where(s => s.Workload != "burst" && s.Good.Any(r => r.ConnMaxReq is not null)).ToList();
        if (fairness.Count > 0)
        {
            md.AppendLine("## Fairness (persistent runs)");
            md.AppendLine();
            md.AppendLine("The fewest and most requests any one connection completed, over the good repeats: a wide gap means some connections starved.");
            md.AppendLine();
            md.AppendLine("| server | client | workload | load | fewest | most |");
            md.AppendLine("|---|---|---|---|---|---|");
            foreach (var e in fairness)
                md.AppendLine($"| {e.Server} | {e.Client} | {e.Workload} | {e.Load} | {e.Good.Min(r => r.ConnMinReq)} | {e.Good.Max(r => r.ConnMaxReq)} |");
            md.AppendLine();
        }

        if (charts.Count > 0)
        {
            md.AppendLine("## Charts");
            md.AppendLine();
            foreach (var (file, title) in charts) md.AppendLine($"![{title}]({file})");
            md.AppendLine();
        }

        if (microbench.Count > 0)
        {
            md.AppendLine("## Microbenchmarks (BenchmarkDotNet, in-process)");
            md.AppendLine();
            md.AppendLine("| project | benchmark | parameters | mean | error (99.9%) | allocated per op |");
            md.AppendLine("|---|---|---|---|---|---|");
            foreach (var m in microbench)
                md.AppendLine($"| {m.Project} | {m.Benchmark} | {m.Parameters} | {Time(m.MeanNs)} | {(m.ErrorNs is { } e ? Time(e) : "-")} | {(m.AllocatedBytes is { } b ? $"{b:F0} B" : "-")} |");
            md.AppendLine();
        }

        if (machine is not null)
        {
            md.AppendLine("## Machine");
            md.AppendLine();
            md.AppendLine("| what | value |");
            md.AppendLine("|---|---|");
            foreach (var (k, v) in machine.Rows()) md.AppendLine($"| {k} | {v.Replace("|", "/")} |");
            md.AppendLine($"| pinning | server cpu {rows.FirstOrDefault()?.ServerCpus}, client cpu {rows.FirstOrDefault()?.ClientCpus} |");
            md.AppendLine();
        }
        return md.ToString();
    }

    /// <summary>
    /// The same server under its own client and under h2load: if the two disagree, the lower
    /// figure is the load generator's, and the ratio says how much of the server it could measure.
    /// </summary>
    private static IEnumerable<string> LoadToolRatios(IReadOnlyList<ExperimentStats> stats)
    {
        var pairs = stats.Where(s => s.Client == LoadTools.H2Load.Name && s.ReqPerS is not null)
            .Select(h => (H2: h, Own: stats.FirstOrDefault(o => o.IsOwnPair && o.Server == h.Server && o.Workload == h.Workload
                && o.Transport == h.Transport && o.Connections == h.Connections && o.Payload == h.Payload && o.ReqPerS is not null)))
            .ToList();
        if (pairs.Count == 0) yield break;
        yield return "## Load tools compared (gRPC unary, same server, same run)";
        yield return "";
        yield return "| server | own client req/s | h2load req/s | own / h2load | own client CPU us/call | h2load CPU us/call | server CPU us/call (own / h2load) |";
        yield return "|---|---|---|---|---|---|---|";
        foreach (var (h2, own) in pairs)
            yield return string.Create(CultureInfo.InvariantCulture,
                $"| {h2.Server} | {N(own?.ReqPerS?.Median)} | {N(h2.ReqPerS!.Median)} | {(own is null ? "-" : $"{own.ReqPerS!.Median / h2.ReqPerS.Median:F2}x")} | {N(own?.Of(r => r.ClientCpuUsPerReq)?.Median, "F1")} | {N(h2.Of(r => r.ClientCpuUsPerReq)?.Median, "F1")} | {N(own?.Of(r => r.ServerCpuUsPerReq)?.Median, "F1")} / {N(h2.Of(r => r.ServerCpuUsPerReq)?.Median, "F1")} |");
        yield return "";
    }

    private static (int Order, string Title) Section(ExperimentStats s) => s.Workload switch
    {
        "burst" when s.IsOwnPair => (0, "Burst: each implementation with its own client"),
        "burst" => (1, "Burst: every server with one reference client"),
        "persistent" when s.Rate == 0 && s.IsOwnPair => (2, "Persistent, closed loop (peak throughput): each implementation with its own client"),
        "persistent" when s.Rate == 0 => (3, "Persistent, closed loop: every server with one reference client"),
        "persistent" => (4, "Persistent, open loop (latency from each request's intended send time)"),
        _ => (5, "gRPC and memif variants"),
    };

    private static string Spread(Summary? s) => s is null ? "-" :
        string.Create(CultureInfo.InvariantCulture, $"{s.Median:F1} [{s.Min:F1}-{s.Max:F1}] ({s.CiLow:F1}-{s.CiHigh:F1})");

    private static string Time(double ns) => ns switch
    {
        >= 1e6 => string.Create(CultureInfo.InvariantCulture, $"{ns / 1e6:F2} ms"),
        >= 1e3 => string.Create(CultureInfo.InvariantCulture, $"{ns / 1e3:F2} us"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{ns:F1} ns"),
    };

    private static string N(double? v, string format = "F0") => v is null ? "-" : v.Value.ToString(format, CultureInfo.InvariantCulture);
}
