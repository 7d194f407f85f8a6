using System.Globalization;
using Bench.Harness.Results;

namespace Bench.Harness.Report;

/// <summary>A column of the summary tables, declared once: its heading, its legend, and its cell.</summary>
public sealed record SummaryColumn(string Heading, string Legend, Func<ExperimentStats, string> Cell)
{
    /// <summary>A figure's median over the good repeats.</summary>
    public static SummaryColumn Of(Figure f) => new(f.Heading, f.Legend, s => s.Median(f));
}

/// <summary>The columns of every summary table, in order; the legend printed under each table comes from here.</summary>
public static class SummaryColumns
{
    public static readonly IReadOnlyList<SummaryColumn> All =
    [
        new("server", "the server implementation", s => s.Server),
        new("client", "what made the load: a client implementation, or an independent load tool", s => s.Generator),
        new("load", "transport connections, requests in flight where a connection carries several, and the open-loop rate", s => s.Load),
        new("payload", "bytes per request (memif: the frame size)", s => ChartCanvas.Bytes(s.Payload)),
        new("good/runs", "repeats in which every request was verified, of all repeats", s => $"{s.Good.Count}/{s.Runs.Count}"),
        new($"{Figures.WallMs.Heading} median [min-max] (95% CI)",
            $"{Figures.WallMs.Legend}; min-max of the good repeats and the 95% confidence interval of their mean", s => Spread(s.Wall)),
        SummaryColumn.Of(Figures.ConnPerS),
        SummaryColumn.Of(Figures.ReqPerS),
        SummaryColumn.Of(Figures.P50),
        SummaryColumn.Of(Figures.P99),
        SummaryColumn.Of(Figures.P999),
        new("failed", "requests that failed (a wrong echo, a reset, a refused or timed-out connect), over all repeats",
            s => s.Failed.ToString(CultureInfo.InvariantCulture)),
        SummaryColumn.Of(Figures.ServerCpuPerRequest),
        SummaryColumn.Of(Figures.ClientCpuPerRequest),
        SummaryColumn.Of(Figures.ServerRss),
        new("bound", "the pinned core that was saturated (>= 90% busy) in most good repeats: server, client, both or neither", s => s.Bound),
        SummaryColumn.Of(Figures.WarmupS),
    ];

    /// <summary>
    /// A markdown table of these experiments and its legend. Columns with no value in any row are
    /// left out (a burst has no requests/s of its own kind to compare, gRPC no connections/s).
    /// </summary>
    public static IEnumerable<string> Table(IReadOnlyList<ExperimentStats> rows)
    {
        var cells = rows.Select(r => All.Select(c => c.Cell(r)).ToArray()).ToList();
        var shown = Shown(cells);
        yield return "| " + string.Join(" | ", shown.Select(i => All[i].Heading)) + " |";
        yield return "|" + string.Concat(shown.Select(_ => "---|"));
        foreach (var r in cells) yield return "| " + string.Join(" | ", shown.Select(i => r[i].Replace("|", "/"))) + " |";
        yield return "";
        yield return "<sub>" + string.Join("; ", shown.Select(i => $"**{All[i].Heading}**: {All[i].Legend}")) + ".</sub>";
        yield return "";
    }

    /// <summary>The columns a table of these cells shows: the first five always, the rest where any row has a value.</summary>
    public static IReadOnlyList<int> Shown(IReadOnlyList<string[]> cells) =>
        Enumerable.Range(0, All.Count).Where(i => i < 5 || cells.Any(r => r[i] != "-")).ToList();

    private static string Spread(Summary? s) => s is null ? "-" :
        string.Create(CultureInfo.InvariantCulture, $"{s.Median:F1} [{s.Min:F1}-{s.Max:F1}] ({s.CiLow:F1}-{s.CiHigh:F1})");
}
