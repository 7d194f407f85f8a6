using System.Globalization;
using System.Text;
using Bench.Harness.Results;
using ScottPlot;

namespace Bench.Harness.Report;

public enum Verdict { Same, Improvement, Regression, Noise }

/// <summary>One figure of one experiment, before and after.</summary>
public sealed record ComparisonRow(string Experiment, string Figure, bool HigherIsBetter,
    IReadOnlyList<double> Before, IReadOnlyList<double> After, double Change, double P, Verdict Verdict);

/// <summary>
/// Base against new, per implementation and workload: the change of the median and whether it
/// is beyond the noise, judged by a two-sided Mann-Whitney U test on the good repeats.
/// A regression is significant (p &lt; alpha) and worse than the threshold.
/// </summary>
public sealed record Comparison(IReadOnlyList<ComparisonRow> Rows, double Threshold, double Alpha)
{
    public static Comparison Compute(IReadOnlyList<RunRecord> before, IReadOnlyList<RunRecord> after, double threshold, double alpha)
    {
        var rows = new List<ComparisonRow>();
        var old = ExperimentStats.Group(before).ToDictionary(Key);
        foreach (var now in ExperimentStats.Group(after))
        {
            if (!old.TryGetValue(Key(now), out var was)) continue;
            foreach (var figure in new[] { now.Workload.Headline, Figures.P99 })
            {
                var higherIsBetter = figure.HigherIsBetter;
                var b = was.Good.Select(figure.Get).OfType<double>().ToList();
                var n = now.Good.Select(figure.Get).OfType<double>().ToList();
                if (b.Count == 0 || n.Count == 0) continue;
                var (mb, mn) = (Statistics.Median(b), Statistics.Median(n));
                var change = mb == 0 ? 0 : (mn - mb) / mb;
                var p = Statistics.MannWhitneyP(b, n);
                var better = higherIsBetter ? change > 0 : change < 0;
                var verdict = p >= alpha ? (Math.Abs(change) > threshold ? Verdict.Noise : Verdict.Same)
                    : Math.Abs(change) <= threshold ? Verdict.Same
                    : better ? Verdict.Improvement : Verdict.Regression;
                var experiment = now.Workload.Multiplexes ? $"{now.Pair} {now.Load} {ChartCanvas.Bytes(now.Payload)}"
                    : $"{now.Pair} {now.Workload.Name} {now.Load} {ChartCanvas.Bytes(now.Payload)}";
                rows.Add(new ComparisonRow(experiment, figure.Heading, higherIsBetter, b, n, change, p, verdict));
            }
        }
        return new Comparison(rows, threshold, alpha);
    }

    private static string Key(ExperimentStats s) =>
        $"{s.Server}|{s.Generator}|{s.Transport}|{s.Workload.Name}|{s.Connections}|{s.InFlight}|{s.Payload}|{(s.Rate > 0 ? "open" : "closed")}";

    public string Write(string dir, string baseName, string newName)
    {
        Directory.CreateDirectory(dir);
        var md = new StringBuilder();
        md.AppendLine($"# Compare: {Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(baseName)))} -> {Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(newName)))}");
        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Medians of the good repeats. A change is beyond the noise when a two-sided Mann-Whitney U test on the repeats gives p < {Alpha}; it counts as a regression or improvement when it is also larger than {Threshold:P0}. With 5 repeats on each side the smallest possible p is 0.008; with 2 it is 0.33, so a --quick run can never show a significant change."));
        md.AppendLine();
        md.AppendLine("| experiment | figure | base | new | change | p | verdict |");
        md.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var r in Rows)
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Experiment} | {r.Figure} | {Statistics.Median(r.Before):F1} | {Statistics.Median(r.After):F1} | {r.Change:+0.0%;-0.0%;0.0%} | {r.P:F3} | {Word(r.Verdict)} |"));
        if (Rows.Count == 0) md.AppendLine("| (no experiment appears in both files with good runs) | | | | | | |");
        md.AppendLine();
        if (Chart(dir) is { } chart) md.AppendLine($"![before and after]({chart})");
        var path = Path.Combine(dir, "compare.md");
        File.WriteAllText(path, md.ToString());
        return path;
    }

    private static string Word(Verdict v) => v switch
    {
        Verdict.Regression => "**regression**",
        Verdict.Improvement => "improvement",
        Verdict.Noise => "within noise",
        _ => "no change",
    };

    /// <summary>New median as a percentage of base, per experiment's headline figure.</summary>
    private string? Chart(string dir)
    {
        var headline = Rows.Where(r => r.Figure != Figures.P99.Heading).ToList();
        if (headline.Count == 0) return null;
        var plot = new Plot();
        plot.Title("New as % of base (headline figure; > 100% is better)", size: 15);
        plot.YLabel("% of base");
        var bars = headline.Select((r, i) => new Bar
        {
            Position = i,
            Value = 100 * (r.HigherIsBetter ? Statistics.Median(r.After) / Statistics.Median(r.Before) : Statistics.Median(r.Before) / Statistics.Median(r.After)),
            FillColor = r.Verdict == Verdict.Regression ? Colors.IndianRed : r.Verdict == Verdict.Improvement ? Colors.SeaGreen : Colors.Gray,
        }).ToArray();
        plot.Add.Bars(bars);
        plot.Add.HorizontalLine(100, color: Colors.Black);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(bars.Select(b => b.Position).ToArray(), headline.Select(r => r.Experiment).ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = -30;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
        plot.Axes.Bottom.MinimumSize = 180;
        plot.SavePng(Path.Combine(dir, "compare.png"), 900, 520);
        return "compare.png";
    }
}
