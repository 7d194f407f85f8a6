using System.Globalization;
using System.Text.Json;
using System.Text;
using Bench.Harness.Machine;
using Bench.Harness.Microbench;
using Bench.Harness.Results;
using Bench.Harness.Workloads;

namespace Bench.Harness.Report;

/// <summary>
/// Writes summary.md and the charts of a result set from its rows alone, so an old CSV can be
/// redrawn (`bench report`). The machine facts come from machine.json beside the CSV when present.
/// </summary>
public static class ReportWriter
{
    /// <summary>Redraws a result set from its files: runs.csv or results.json, and machine.json and microbench.csv beside it when present.</summary>
    public static string WriteFromCsv(string path, string outDir) => Write(outDir, ResultSet.Read(path));

    public static string Write(string dir, IReadOnlyList<RunRecord> rows, MachineFacts? machine, IReadOnlyList<MicrobenchRecord>? microbench = null) =>
        Write(dir, new ResultSet(rows, machine, microbench ?? []));

    /// <summary>Writes summary.md, its charts, results.json and the results page (index.html); returns the summary's path.</summary>
    public static string Write(string dir, ResultSet set)
    {
        Directory.CreateDirectory(dir);
        var rows = set.Rows;
        var stats = ExperimentStats.Group(rows);
        var charts = ChartCanvas.DrawAll(dir, stats, ChartCanvas.Caption(set.Machine, rows), set.Folder ?? dir);
        var md = Markdown(rows, stats, charts, set.Machine, set.Microbench);
        var path = Path.Combine(dir, "summary.md");
        File.WriteAllText(path, md);
        ResultsJson.Write(Path.Combine(dir, ResultsJson.FileName), set, stats, charts);
        ResultsPage.Write(Path.Combine(dir, ResultsPage.FileName), set, stats, charts);
        return path;
    }

    public static MachineFacts? ReadMachine(string csvPath) => ResultSet.ReadMachine(Path.GetDirectoryName(Path.GetFullPath(csvPath))!);

    /// <summary>The paragraph under the title of the summary and of the page.</summary>
    public static string Intro(IReadOnlyList<RunRecord> rows)
    {
        var ok = rows.Count(r => r.Status == RunStatus.Ok);
        return $"{rows.Count} runs, {ok} ok, {rows.Count - ok} not ok. Figures are the median of the good repeats; " +
               "the spread is min-max and the 95% confidence interval of the mean (Student t). Latency percentiles are computed by the " +
               $"harness from every request's raw sample, recorded into an HdrHistogram ({LatencyHistogram.SignificantDigits} significant digits). " +
               "`bound` names the pinned core that was saturated (>= 90% busy).";
    }

    /// <summary>The title of the summary and of the page.</summary>
    public static string Title(IReadOnlyList<RunRecord> rows) => $"Echo benchmark results: {string.Join(", ", rows.Select(r => r.RunId).Distinct())}";

    /// <summary>The summary's sections in order, each with its experiments in the order its table lists them.</summary>
    public static IEnumerable<(ReportSection Section, IReadOnlyList<ExperimentStats> Rows)> Sections(IReadOnlyList<ExperimentStats> stats) =>
        stats.GroupBy(s => s.Workload.Section(s)).OrderBy(g => g.Key.Order)
            .Select(g => (g.Key, (IReadOnlyList<ExperimentStats>)g.OrderBy(s => s.Connections).ThenBy(s => s.InFlight).ThenBy(s => s.Payload)
                .ThenBy(s => s.Rate).ThenBy(s => s.Server).ThenBy(s => s.Generator).ToList()));

    /// <summary>What a note under a section's table says it is about.</summary>
    public static string NoteSubject(ExperimentStats e) => $"{e.Pair}, {e.Load}, {ChartCanvas.Bytes(e.Payload)}";

    private static string Markdown(IReadOnlyList<RunRecord> rows, IReadOnlyList<ExperimentStats> stats,
        IReadOnlyList<DrawnChart> charts, MachineFacts? machine, IReadOnlyList<MicrobenchRecord> microbench)
    {
        var md = new StringBuilder();
        md.AppendLine($"# {Title(rows)}");
        md.AppendLine();
        md.AppendLine(Intro(rows));
        md.AppendLine();
        if (rows.FirstOrDefault(r => r.ServerHost.Length > 0) is { } multi)
        {
            md.AppendLine($"Multi-host: the server on {multi.ServerHost}, the load from {multi.ClientHosts.Split(' ').Length} client hosts " +
                          $"({multi.ClientHosts}), over {multi.Link}; latency percentiles come from every client's samples merged.");
            md.AppendLine();
        }

        foreach (var (section, ordered) in Sections(stats))
        {
            md.AppendLine($"## {section.Title}");
            md.AppendLine();
            foreach (var line in SummaryColumns.Table(ordered)) md.AppendLine(line);
            var notes = ordered.SelectMany(e => Anomalies.Explain(e).Select(n => $"- **{NoteSubject(e)}**: {n}")).ToList();
            if (notes.Count > 0)
            {
                md.AppendLine("What the counters say:");
                md.AppendLine();
                foreach (var n in notes) md.AppendLine(n);
                md.AppendLine();
            }
        }

        foreach (var line in LoadToolRatios(stats)) md.AppendLine(line);
        foreach (var w in Workload.All)
            foreach (var line in w.Tables(stats.Where(s => s.Workload == w).ToList())) md.AppendLine(line);
        foreach (var line in ServerTime(stats)) md.AppendLine(line);

        var fairness = stats.Where(s => !s.Workload.OneConnectionPerRequest && s.Good.Any(r => r.ConnMaxReq is not null)).ToList();
        if (fairness.Count > 0)
        {
            md.AppendLine("## Fairness (held connections)");
            md.AppendLine();
            md.AppendLine("The fewest and most requests any one connection completed, over the good repeats: a wide gap means some connections starved.");
            md.AppendLine();
            md.AppendLine("| server | client | workload | load | fewest | most |");
            md.AppendLine("|---|---|---|---|---|---|");
            foreach (var e in fairness)
                md.AppendLine($"| {e.Server} | {e.Generator} | {e.Workload.Name} | {e.Load} | {e.Good.Min(r => r.ConnMinReq)} | {e.Good.Max(r => r.ConnMaxReq)} |");
            md.AppendLine();
        }

        if (charts.Count > 0)
        {
            md.AppendLine("## Charts");
            md.AppendLine();
            foreach (var chart in charts) md.AppendLine($"![{chart.Title}]({chart.File})");
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
    /// The same server under its own client and under an independent load tool, in one run: if
    /// the two disagree, the lower figure is the load generator's, and the ratio says how much of
    /// the server it could measure.
    /// </summary>
    private static IEnumerable<string> LoadToolRatios(IReadOnlyList<ExperimentStats> stats)
    {
        var pairs = stats.Where(s => s.Client.Length == 0 && s.ReqPerS is not null)
            .Select(t => (Tool: t, Own: stats.FirstOrDefault(o => o.IsOwnPair && o.Server == t.Server && o.Workload == t.Workload
                && o.Transport == t.Transport && o.Connections == t.Connections && o.InFlight == t.InFlight && o.Payload == t.Payload && o.ReqPerS is not null)))
            .ToList();
        if (pairs.Count == 0) yield break;
        yield return "## Load tools compared (same server, same run)";
        yield return "";
        yield return "| server | workload | load tool | own client req/s | tool req/s | own / tool | own client CPU us/call | tool CPU us/call | server CPU us/call (own / tool) |";
        yield return "|---|---|---|---|---|---|---|---|---|";
        foreach (var (tool, own) in pairs)
            yield return string.Create(CultureInfo.InvariantCulture,
                $"| {tool.Server} | {tool.Workload.Name} | {tool.Generator} | {Med(own, Figures.ReqPerS)} | {tool.Median(Figures.ReqPerS)} | {(own is null ? "-" : $"{own.ReqPerS!.Median / tool.ReqPerS!.Median:F2}x")} | {Med(own, Figures.ClientCpuPerRequest)} | {tool.Median(Figures.ClientCpuPerRequest)} | {Med(own, Figures.ServerCpuPerRequest)} / {tool.Median(Figures.ServerCpuPerRequest)} |");
        yield return "";
    }

    /// <summary>
    /// Where each server's CPU goes per request, closed-loop runs only: its own code against the
    /// kernel's, and how often it entered the kernel (system calls, with --syscalls) and gave up
    /// its core (context switches). Two servers with the same kernel time but different user time
    /// differ in their language and runtime; different system calls per request, in their design.
    /// </summary>
    private static IEnumerable<string> ServerTime(IReadOnlyList<ExperimentStats> stats)
    {
        var rows = stats.Where(s => s.Rate == 0 && s.Of(Figures.ServerCpuPerRequest) is not null)
            .OrderBy(s => s.Workload.Order).ThenBy(s => s.Connections).ThenBy(s => s.Payload).ThenBy(s => s.Generator).ThenBy(s => s.Server).ToList();
        if (rows.Count == 0) yield break;
        Figure[] figures = [Figures.ReqPerS, Figures.ServerCpuPerRequest, Figures.ServerUserPerRequest, Figures.ServerKernelPerRequest,
            Figures.SyscallsPerRequest, Figures.SwitchesPerRequest];
        var counted = rows.Any(s => s.Of(Figures.SyscallsPerRequest) is not null);
        yield return "## Where the server's time goes (closed loop, per request)";
        yield return "";
        yield return counted ? "System calls were counted (--syscalls): perf's tracepoint adds a little to every system call, so these runs' rates are a little lower than uncounted ones."
            : "System calls were not counted in this run (`--syscalls` counts them, at a small cost to the rate).";
        yield return "";
        yield return "| server | client | workload | load | payload | " + string.Join(" | ", figures.Select(f => f.Heading)) + " |";
        yield return "|---|---|---|---|---|" + string.Concat(figures.Select(_ => "---|"));
        foreach (var s in rows)
            yield return $"| {s.Server} | {s.Generator} | {s.Workload.Name} | {s.Load} | {ChartCanvas.Bytes(s.Payload)} | " + string.Join(" | ", figures.Select(s.Median)) + " |";
        yield return "";
        yield return "<sub>" + string.Join("; ", figures.Skip(1).Select(f => $"**{f.Heading}**: {f.Legend}")) + "; medians of the good repeats.</sub>";
        yield return "";
    }

    private static string Med(ExperimentStats? s, Figure f) => s?.Median(f) ?? "-";

    private static string Time(double ns) => ns switch
    {
        >= 1e6 => string.Create(CultureInfo.InvariantCulture, $"{ns / 1e6:F2} ms"),
        >= 1e3 => string.Create(CultureInfo.InvariantCulture, $"{ns / 1e3:F2} us"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{ns:F1} ns"),
    };
}
