using System.Globalization;
using System.Text;
using Bench.Harness.Report;
using Bench.Harness.Results;

namespace Bench.Harness.Ab;

/// <summary>
/// An A/B run as a pull request shows it: ab.md (one table, ready to paste into a PR comment or
/// a job summary) and ab.png (B against A per experiment, with the 95% interval).
/// </summary>
public static class AbReport
{
    public static string Write(string dir, Revision a, Revision b, AbSettings s, Comparison comparison,
        IReadOnlyList<RunRecord> aRows, IReadOnlyList<RunRecord> bRows, IReadOnlyList<string> notRun)
    {
        var spreads = SameSideSpreads(aRows, bRows);
        var md = new StringBuilder();
        md.AppendLine($"## Benchmark A/B: B = {b} against A = {a}");
        md.AppendLine();
        md.AppendLine($"**{Headline(comparison, aRows, bRows)}.**");
        md.AppendLine();
        md.AppendLine("| experiment | figure | A (median) | B (median) | B/A | 95% CI | A/A | verdict |");
        md.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var r in comparison.Rows.Where(r => !r.IsFigure))
            md.AppendLine($"| {r.Experiment} | runs | {r.BaseRuns.Good} of {r.BaseRuns.Runs} good | {r.NewRuns.Good} of {r.NewRuns.Runs} good | | | | {Comparison.Word(r.Verdict)}: {r.Reason} |");
        foreach (var r in comparison.Rows.Where(r => r.IsFigure))
        {
            var ratio = RatioOf(r);
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Experiment} | {r.Figure} | {Statistics.Median(r.Before):#,0.#} | {Statistics.Median(r.After):#,0.#} | {ratio?.Ratio.ToString("F3", CultureInfo.InvariantCulture) ?? "-"} | {(ratio is { } q ? $"[{q.CiLow:F3}, {q.CiHigh:F3}]{(q.Covers95 ? "" : "*")}" : "-")} | {Percent(spreads.GetValueOrDefault(r.Experiment))} | {Comparison.Word(r.Verdict)} |"));
        }
        if (comparison.Rows.Count == 0) md.AppendLine("| (no experiment has good runs on both sides) | | | | | | | |");
        md.AppendLine();
        var chart = comparison.HeadlineChart(dir, "ab.png", "B as % of A (headline figure; above 100% is better; whiskers: 95% interval)", "% of A",
            ChartCanvas.Caption(ResultSet.ReadMachine(dir), comparison.Runs), r => RatioOf(r) is { } q ? (q.Ratio, (q.CiLow, q.CiHigh)) : null);
        if (chart is not null) md.AppendLine($"![B as % of A]({chart})");
        md.AppendLine();
        if (notRun.Count > 0) md.AppendLine($"Planned by one side only, not run: {string.Join("; ", notRun)}.\n");
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"How it was measured: both revisions built from source in their own trees and run in one session on the same cores (servers on cpu {s.Run.ServerCpus}, load on cpu {s.Run.ClientCpus}), each experiment in {s.Blocks} blocks of A B B A (then B A A B), {2 * s.Blocks} runs a side; every block starts, checks and warms a fresh server of each side, and the idle one is paused (SIGSTOP) while the other is measured. "));
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"B/A is the Hodges-Lehmann ratio (the median of the ratios of every B run to every A run) with its 95% interval (* too few runs for 95%: every ratio's range). A/A is the machine's own noise in this session: the largest change between the two runs of one revision in one block. A change is a **regression** when B is worse than A by more than {s.Threshold * 100:0.#}% and beyond the noise (exact two-sided Mann-Whitney U over the runs, p < {s.Alpha}); an experiment is **broken** when B has failed runs A had none of, or fewer good runs. Rows: a/runs.csv and b/runs.csv (`./run-all.sh compare a/runs.csv b/runs.csv` gives p and the shift per figure)."));
        var path = Path.Combine(dir, "ab.md");
        File.WriteAllText(path, md.ToString());
        return path;
    }

    /// <summary>The one line an A/B run ends with: what was compared, what it found, how noisy the machine was.</summary>
    public static string Headline(Comparison comparison, IReadOnlyList<RunRecord> aRows, IReadOnlyList<RunRecord> bRows)
    {
        var compared = comparison.Rows.Where(r => r.IsFigure).Select(r => r.Experiment).Distinct().Count();
        var spreads = SameSideSpreads(aRows, bRows).Values.ToList();
        var noise = spreads.Count == 0 ? "no A/A spread (no block with two good runs of one side)"
            : $"A/A spread median {Percent(Statistics.Median(spreads))}, largest {Percent(spreads.Max())}";
        return $"{Comparison.Plural(compared, "experiment")} compared: {Comparison.Plural(comparison.Regressions, "regression")}, "
            + $"{Comparison.Plural(comparison.Broken, "broken experiment")}, {comparison.Rows.Count(r => r.Verdict == Verdict.Improvement)} improved; {noise}";
    }

    /// <summary>
    /// Per experiment, the largest relative change of its headline figure between the two runs
    /// of one side in one block (repeats 2k+1 and 2k+2): what the machine does by itself.
    /// </summary>
    public static IReadOnlyDictionary<string, double> SameSideSpreads(IReadOnlyList<RunRecord> aRows, IReadOnlyList<RunRecord> bRows)
    {
        var spreads = new Dictionary<string, double>();
        foreach (var stats in ExperimentStats.Group(aRows).Concat(ExperimentStats.Group(bRows)))
        {
            var byRepeat = stats.Good.Where(r => r.Repeat > 0).ToDictionary(r => r.Repeat, r => stats.Workload.Headline.Get(r));
            var changes = byRepeat.Keys.Where(k => k % 2 == 1 && byRepeat.ContainsKey(k + 1))
                .Select(k => (First: byRepeat[k], Second: byRepeat[k + 1]))
                .Where(p => p.First > 0 && p.Second > 0)
                .Select(p => Math.Exp(Math.Abs(Math.Log(p.Second!.Value / p.First!.Value))) - 1).ToList();
            if (changes.Count == 0) continue;
            var label = Comparison.Label(stats);
            spreads[label] = Math.Max(spreads.GetValueOrDefault(label), changes.Max());
        }
        return spreads;
    }

    /// <summary>B/A of a figure row; null when a figure is 0 somewhere (a ratio says nothing then).</summary>
    private static RatioEstimate? RatioOf(ComparisonRow r) =>
        r.Before.Concat(r.After).All(v => v > 0) ? Statistics.Ratio(r.Before, r.After) : null;

    private static string Percent(double? v) => v is { } x ? x.ToString("0.0%", CultureInfo.InvariantCulture) : "-";

}
