using Bench.Harness.Results;

namespace Bench.Harness.Soak;

/// <summary>What a soak found in one series of a server's footprint.</summary>
/// <param name="AtStart">The median of the first tenth of the samples after the warm-up.</param>
/// <param name="Growth">The Theil-Sen line's rise from the end of the warm-up to the end of the soak.</param>
/// <param name="P">One-sided Mann-Kendall p of a rising trend after the warm-up.</param>
/// <param name="LastHalfGrowth">The Theil-Sen line's rise over the second half of what followed the warm-up.</param>
/// <param name="LastHalfP">One-sided Mann-Kendall p of a rising trend over that second half.</param>
public sealed record Trend(string Figure, string Unit, double AtStart, double AtEnd, double Growth, double Allowed, double P,
    double LastHalfGrowth, double LastHalfP, int Samples)
{
    private bool Rose => Samples >= LeakDetector.MinimumSamples && P < 0.01 && Growth > Allowed;

    /// <summary>
    /// A leak: a steady rise (p &lt; 0.01) beyond the allowance that is still going on in the second
    /// half, at no less than half the allowance there (what a steady leak that just crosses it grows).
    /// </summary>
    public bool Leaks => Rose && LastHalfP < 0.01 && LastHalfGrowth > Allowed / 2;

    /// <summary>Rose beyond the allowance, then stopped: a heap or a pool reaching its working size.</summary>
    public bool Settled => Rose && !Leaks;

    public string Verdict => Leaks ? "**leaks**" : Settled ? "rose, then settled" : Samples < LeakDetector.MinimumSamples ? "too few samples" : "steady";
}

/// <summary>
/// Tells a leak from the ups and downs of a server under churn. The first fifth of a soak (at
/// most a minute) is warm-up: pools fill, the JIT compiles, caches grow to their working size.
/// After it, a series rises when the Mann-Kendall trend test finds it rising (robust to the
/// saw-tooth of connections closing and reopening) and its Theil-Sen line (the median of all
/// pairwise slopes, not moved by a garbage collection or a burst) grows by more than the
/// allowance: a fixed floor (an allocator's arena, a few descriptors) or a share of its level.
/// A leak grows for as long as the server runs, so a rise counts as one only if the second half
/// of the series is still rising too; a heap or pool that takes minutes to reach its size rises
/// and then settles, and is reported as that.
/// </summary>
public static class LeakDetector
{
    public const int MinimumSamples = 10;

    public static double WarmupSeconds(double totalSeconds) => Math.Min(60, totalSeconds / 5);

    public static Trend Judge(string figure, string unit, IReadOnlyList<(double Seconds, double Value)> samples, double warmupSeconds,
        double floor, double share)
    {
        var after = samples.Where(s => s.Seconds >= warmupSeconds).ToList();
        if (after.Count == 0) return new Trend(figure, unit, double.NaN, double.NaN, 0, floor, 1, 0, 1, 0);
        var start = Statistics.Median(after.Take(Math.Max(1, after.Count / 10)).Select(s => s.Value).ToList());
        var lastHalf = after.Skip(after.Count / 2).ToList();
        return new Trend(figure, unit, start, after[^1].Value, Growth(after), Math.Max(floor, share * start),
            Statistics.MannKendallRisingP(after), Growth(lastHalf), Statistics.MannKendallRisingP(lastHalf), after.Count);
    }

    private static double Growth(IReadOnlyList<(double Seconds, double Value)> series) =>
        Statistics.TheilSenSlope(series) * (series[^1].Seconds - series[0].Seconds);
}
