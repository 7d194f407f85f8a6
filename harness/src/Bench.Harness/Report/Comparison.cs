using System.Globalization;
using System.Text;
using Bench.Harness.Results;
using ScottPlot;

namespace Bench.Harness.Report;

/// <summary>
/// What a comparison row says. The first four judge a figure; <see cref="Broken"/> (a regression
/// of the experiment itself), <see cref="NotComparable"/> and <see cref="Skipped"/> judge its runs.
/// </summary>
public enum Verdict { Same, Improvement, Regression, Noise, Broken, NotComparable, Skipped }

/// <summary>
/// One figure of one experiment, before and after; or, for the verdicts about runs, what happened
/// to the experiment's runs (<see cref="Reason"/>) with nothing in Before and After.
/// </summary>
public sealed record ComparisonRow(string Experiment, string Figure, bool HigherIsBetter,
    IReadOnlyList<double> Before, IReadOnlyList<double> After, double Change, double P, Verdict Verdict)
{
    /// <summary>Why the experiment is broken, skipped or not comparable; empty for a figure.</summary>
    public string Reason { get; init; } = "";

    /// <summary>The Hodges-Lehmann shift from base to new with its 95% interval; null for the verdicts about runs.</summary>
    public ShiftEstimate? Shift { get; init; }

    /// <summary>Good runs and all runs of the experiment in the base and the new set.</summary>
    public (int Good, int Runs) BaseRuns { get; init; }
    public (int Good, int Runs) NewRuns { get; init; }

    /// <summary>A row that judges a figure (the other verdicts are about the experiment's runs).</summary>
    public bool IsFigure => Verdict is Verdict.Same or Verdict.Improvement or Verdict.Regression or Verdict.Noise;
}

/// <summary>
/// Base against new, per experiment (the repeats <see cref="ExperimentStats.Group"/> groups).
/// First what broke: an experiment is <see cref="Verdict.Broken"/>, a regression, when the new
/// set has runs of a failure status the base had none of, fewer good repeats than the base
/// (skipped runs aside), or no runs at all where the base had good ones. Skipped runs (a limit of
/// the machine) are reported, not counted. Open-loop experiments match only at the same offered
/// rate; one at another rate is <see cref="Verdict.NotComparable"/>, not a regression.
/// Then each headline figure: the change of the median, whether it is beyond the noise (an exact
/// two-sided Mann-Whitney U test on the good repeats, <see cref="Statistics.MannWhitneyP"/>), and
/// the Hodges-Lehmann shift with its 95% interval. A figure regression is significant (p &lt; alpha)
/// and worse than the threshold.
/// </summary>
public sealed record Comparison(IReadOnlyList<ComparisonRow> Rows, double Threshold, double Alpha)
{
    /// <summary>Experiments of the new set that the base does not have: nothing to compare them with.</summary>
    public IReadOnlyList<string> OnlyInNew { get; init; } = [];

    /// <summary>Every run of both sets, as read.</summary>
    public IReadOnlyList<RunRecord> Runs { get; init; } = [];

    /// <summary>Experiments that broke: each is a regression.</summary>
    public int Broken => Rows.Count(r => r.Verdict == Verdict.Broken);

    /// <summary>Figures that regressed beyond the noise and the threshold.</summary>
    public int Regressions => Rows.Count(r => r.Verdict == Verdict.Regression);

    public static Comparison Compute(IReadOnlyList<RunRecord> before, IReadOnlyList<RunRecord> after, double threshold, double alpha)
    {
        var rows = new List<ComparisonRow>();
        var now = ExperimentStats.Group(after).ToDictionary(Key);
        var old = ExperimentStats.Group(before);
        foreach (var was in old)
        {
            if (!now.TryGetValue(Key(was), out var cur))
            {
                if (Unmatched(was, now.Values) is { } missing) rows.Add(missing);
                continue;
            }
            if (RunsVerdict(was, cur) is { } health) rows.Add(health);
            rows.AddRange(FigureRows(was, cur, threshold, alpha));
        }
        var inBase = old.Select(Key).ToHashSet();
        var onlyInNew = now.Where(kv => !inBase.Contains(kv.Key)).Select(kv => Label(kv.Value)).ToList();
        return new Comparison(rows, threshold, alpha) { OnlyInNew = onlyInNew, Runs = [.. before, .. after] };
    }

    /// <summary>
    /// What matches an experiment between the two sets: everything that defines it, the offered
    /// rate of an open-loop one included (two runs that each derived their own rate ran at different loads).
    /// </summary>
    private static string Key(ExperimentStats s) =>
        $"{FamilyKey(s)}|{(s.Rate > 0 ? Rate(s.Rate) : "closed")}";

    /// <summary>The key without the rate: an open-loop experiment's counterpart at any rate.</summary>
    private static string FamilyKey(ExperimentStats s) =>
        $"{s.Server}|{s.Generator}|{s.Transport}|{s.Workload.Name}|{s.Connections}|{s.InFlight}|{s.Payload}";

    private static string Rate(double rate) => rate.ToString(CultureInfo.InvariantCulture);

    /// <summary>How a comparison names an experiment: the pair, the workload and load, the payload.</summary>
    public static string Label(ExperimentStats s) => s.Workload.Multiplexes ? $"{s.Pair} {s.Load} {ChartCanvas.Bytes(s.Payload)}"
        : $"{s.Pair} {s.Workload.Name} {s.Load} {ChartCanvas.Bytes(s.Payload)}";

    private static ComparisonRow RunsRow(ExperimentStats was, ExperimentStats? cur, Verdict verdict, string reason) =>
        new(Label(was), "runs", true, [], [], double.NaN, double.NaN, verdict)
        {
            Reason = reason,
            BaseRuns = (was.Good.Count, was.Runs.Count),
            NewRuns = cur is null ? (0, 0) : (cur.Good.Count, cur.Runs.Count),
        };

    /// <summary>A base experiment with no counterpart in the new set: at another offered rate, or missing.</summary>
    private static ComparisonRow? Unmatched(ExperimentStats was, IEnumerable<ExperimentStats> now)
    {
        if (was.Rate > 0)
        {
            var rates = now.Where(s => s.Rate > 0 && FamilyKey(s) == FamilyKey(was)).Select(s => s.Rate).Order().ToList();
            if (rates.Count > 0)
                return RunsRow(was, null, Verdict.NotComparable,
                    $"not comparable: offered rate {Rate(was.Rate)}/s in base, {string.Join(", ", rates.Select(r => $"{Rate(r)}/s"))} in new (run the new set with --rate {Rate(was.Rate)})");
        }
        return was.Good.Count == 0 ? null
            : RunsRow(was, null, Verdict.Broken, $"missing from the new set (base: {was.Good.Count} of {was.Runs.Count} runs good)");
    }

    /// <summary>Broken when new failures appeared or good repeats were lost; skipped when the machine could not run some; else null.</summary>
    private static ComparisonRow? RunsVerdict(ExperimentStats was, ExperimentStats cur)
    {
        var causes = new List<string>();
        foreach (var failed in cur.Runs.Where(r => r.Status is not (RunStatus.Ok or RunStatus.Skipped)).GroupBy(r => r.Status))
        {
            if (was.Runs.Any(r => r.Status == failed.Key)) continue;
            var error = failed.Select(r => r.Error).FirstOrDefault(e => e.Length > 0);
            causes.Add($"{failed.Count()} of {cur.Runs.Count} runs {failed.Key} (base: none){(error is null ? "" : $", first error: \"{Quote(error)}\"")}");
        }
        var skipped = cur.Runs.Where(r => r.Status == RunStatus.Skipped).ToList();
        if (was.Good.Count - cur.Good.Count - skipped.Count > 0)
            causes.Add($"{cur.Good.Count} of {cur.Runs.Count} runs good (base: {was.Good.Count} of {was.Runs.Count})");
        var skipNote = skipped.Count == 0 ? null
            : $"{skipped.Count} of {cur.Runs.Count} runs skipped{(skipped[0].Error.Length > 0 ? $": \"{Quote(skipped[0].Error)}\"" : "")} (a limit of the machine, not a regression)";
        if (causes.Count > 0) return RunsRow(was, cur, Verdict.Broken, string.Join("; ", skipNote is null ? causes : [.. causes, skipNote]));
        return skipNote is null ? null : RunsRow(was, cur, Verdict.Skipped, skipNote);
    }

    private static IEnumerable<ComparisonRow> FigureRows(ExperimentStats was, ExperimentStats now, double threshold, double alpha)
    {
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
            yield return new ComparisonRow(Label(now), figure.Heading, higherIsBetter, b, n, change, p, verdict)
            {
                Shift = Statistics.HodgesLehmann(b, n),
                BaseRuns = (was.Good.Count, was.Runs.Count),
                NewRuns = (now.Good.Count, now.Runs.Count),
            };
        }
    }

    /// <summary>An error message as one table cell: one line, no column breaks, not too long.</summary>
    private static string Quote(string error)
    {
        var line = string.Join(' ', error.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries)).Trim();
        return (line.Length <= 160 ? line : line[..157] + "...").Replace("|", "\\|");
    }

    public string Write(string dir, string baseName, string newName)
    {
        Directory.CreateDirectory(dir);
        var md = new StringBuilder();
        md.AppendLine($"# Compare: {Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(baseName)))} -> {Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(newName)))}");
        md.AppendLine();
        md.AppendLine($"**{Plural(Broken, "broken experiment")}, {Plural(Regressions, "figure regression")}.**");
        md.AppendLine();
        md.AppendLine("First what broke. An experiment is **broken**, a regression, when the new set has runs of a failure status " +
            "(`server-failed`, `client-failed`, `verify-failed`, `timeout`, `failed`, `build-failed`) that the base had none of, " +
            "fewer good repeats than the base, or no runs at all where the base had good ones. `skipped` runs (a limit of the machine) " +
            "are listed but are not a regression. Open-loop experiments are compared only at the same offered rate.");
        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"Then each figure, over the good repeats (n of them on each side): the change of the median, and p from an exact two-sided Mann-Whitney U (Wilcoxon rank-sum) test: ties get mid-ranks, and p is the share of all the ways to split the pooled repeats into the two sample sizes whose rank sum lies at least as far from its mean as the observed one (beyond {Statistics.ExactSplits:N0} splits, the normal approximation with the tie-corrected variance, marked ~). A change is beyond the noise when p < {Alpha}; it counts as a regression or improvement when the change of the median is also larger than {Threshold * 100:0.#}%. The shift is the Hodges-Lehmann estimate, the median of all new-minus-base differences between repeats, with its 95% confidence interval from the order statistics of those differences (their ranks from the normal approximation), both as a percentage of the base median. p can only be as small as the repeats allow: with 5 repeats on each side the smallest possible p is 0.008, with 3 it is 0.1, with 2 it is 0.33, so a --quick run can never show a significant change. An interval marked * is the whole range of the differences: too few repeats for a 95% one (e.g. 3 against 3), it covers less."));
        md.AppendLine();
        md.AppendLine("| experiment | figure | n (base/new) | base | new | change of median | p (MWU) | shift (95% CI) | verdict |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var r in Rows.Where(r => !r.IsFigure).Concat(Rows.Where(r => r.IsFigure)))
            md.AppendLine(r.IsFigure
                ? string.Create(CultureInfo.InvariantCulture,
                    $"| {r.Experiment} | {r.Figure} | {r.Before.Count}/{r.After.Count} | {Statistics.Median(r.Before):F1} | {Statistics.Median(r.After):F1} | {r.Change:+0.0%;-0.0%;0.0%} | {(Statistics.MannWhitneyIsExact(r.Before.Count, r.After.Count) ? "" : "~")}{r.P:F3} | {Interval(r.Shift!)} | {Word(r.Verdict)} |")
                : $"| {r.Experiment} | {r.Figure} | {r.BaseRuns.Runs}/{r.NewRuns.Runs} | {r.BaseRuns.Good} of {r.BaseRuns.Runs} good | {(r.Verdict == Verdict.NotComparable ? "-" : $"{r.NewRuns.Good} of {r.NewRuns.Runs} good")} | | | | {(r.Verdict == Verdict.NotComparable ? r.Reason : $"{Word(r.Verdict)}: {r.Reason}")} |");
        if (Rows.Count == 0) md.AppendLine("| (no experiment appears in both files with good runs) | | | | | | | | |");
        md.AppendLine();
        if (OnlyInNew.Count > 0)
        {
            md.AppendLine($"Only in the new set, nothing to compare with: {string.Join("; ", OnlyInNew)}.");
            md.AppendLine();
        }
        if (Chart(dir, ChartCanvas.Caption(ResultSet.ReadMachine(Path.GetDirectoryName(Path.GetFullPath(newName))!), Runs)) is { } chart)
            md.AppendLine($"![before and after]({chart})");
        var path = Path.Combine(dir, "compare.md");
        File.WriteAllText(path, md.ToString());
        return path;
    }

    /// <summary>"1 broken experiment", "2 figure regressions".</summary>
    public static string Plural(int n, string what) => $"{n} {what}{(n == 1 ? "" : "s")}";

    private static string Interval(ShiftEstimate s) =>
        double.IsNaN(s.Relative) ? "-"
        : string.Create(CultureInfo.InvariantCulture, $"{s.Relative:+0.0%;-0.0%;0.0%} [{s.RelativeCiLow:+0.0%;-0.0%;0.0%}, {s.RelativeCiHigh:+0.0%;-0.0%;0.0%}]{(s.Covers95 ? "" : "*")}");

    /// <summary>A verdict as a table cell says it.</summary>
    public static string Word(Verdict v) => v switch
    {
        Verdict.Regression => "**regression**",
        Verdict.Improvement => "improvement",
        Verdict.Noise => "within noise",
        Verdict.Broken => "**broken**",
        Verdict.NotComparable => "not comparable",
        Verdict.Skipped => "skipped",
        _ => "no change",
    };

    /// <summary>New median as a percentage of base, per experiment's headline figure.</summary>
    private string? Chart(string dir, string caption) => HeadlineChart(dir, "compare.png", "New as % of base (headline figure; > 100% is better)", "% of base", caption,
        r => (Statistics.Median(r.After) / Statistics.Median(r.Before), null));

    /// <summary>
    /// One bar per experiment's headline figure: new against base as a percentage, oriented so that
    /// above 100% is better, coloured by verdict, with a whisker where <paramref name="ratioOf"/>
    /// gives an interval; rows it gives nothing for are left out. Returns the file, or null when no bar is left.
    /// </summary>
    public string? HeadlineChart(string dir, string file, string title, string axis, string caption,
        Func<ComparisonRow, (double Ratio, (double Low, double High)? Interval)?> ratioOf)
    {
        var headline = Rows.Where(r => r.IsFigure && r.Figure != Figures.P99.Heading)
            .Select(r => (Row: r, Ratio: ratioOf(r))).Where(h => h.Ratio is not null).ToList();
        if (headline.Count == 0) return null;
        var plot = new Plot();
        plot.Title(title, size: 14);
        plot.YLabel(axis);
        plot.XLabel(caption, size: 11);
        for (var i = 0; i < headline.Count; i++)
        {
            var (r, (ratio, interval)) = (headline[i].Row, headline[i].Ratio!.Value);
            double Better(double x) => 100 * (r.HigherIsBetter ? x : 1 / x);
            var bar = plot.Add.Bar(i, Better(ratio));
            bar.Color = r.Verdict == Verdict.Regression ? Colors.IndianRed : r.Verdict == Verdict.Improvement ? Colors.SeaGreen : Colors.Gray;
            if (interval is not { } ci) continue;
            var whisker = plot.Add.Line(i, Better(ci.Low), i, Better(ci.High));
            whisker.Color = Colors.Black;
            whisker.LineWidth = 2;
        }
        plot.Add.HorizontalLine(100, color: Colors.Black);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, headline.Count).Select(i => (double)i).ToArray(), headline.Select(h => h.Row.Experiment).ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = -30;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
        // Rotated labels need height for their length, and the caption below them.
        plot.Axes.Bottom.MinimumSize = Math.Clamp(5 * headline.Max(h => h.Row.Experiment.Length) + 40, 80, 340);
        plot.SavePng(Path.Combine(dir, file), 900, 640);
        return file;
    }
}
