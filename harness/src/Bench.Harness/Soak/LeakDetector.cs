using Bench.Harness.Results;

namespace Bench.Harness.Soak;

/// <summary>What a soak found in one series of a server's footprint.</summary>
/// <param name="AtStart">The median of the first tenth of the samples after the warm-up.</param>
/// <param name="Growth">The Theil-Sen line's rise from the end of the warm-up to the end of the soak.</param>
/// <param name="P">One-sided Mann-Kendall p of a rising trend after the warm-up.</param>
public sealed record Trend(string Figure, string Unit, double AtStart, double AtEnd, double Growth, double Allowed, double P, int Samples)
{
    /// <summary>A leak: a steady rise (p &lt; 0.01) that grows by more than the allowance.</summary>
    public bool Leaks => Samples >= LeakDetector.MinimumSamples && P < 0.01 && Growth > Allowed;
}

/// <summary>
/// Tells a leak from the ups and downs of a server under churn. The first fifth of a soak (at
/// most a minute) is warm-up: pools fill, the JIT compiles, caches grow to their working size.
/// After it, a series leaks when it rises steadily, by the Mann-Kendall trend test (robust to
/// the saw-tooth of connections closing and reopening), and its Theil-Sen line (the median of
/// all pairwise slopes, not moved by a garbage collection or a burst) grows by more than the
/// allowance: a fixed floor (an allocator's arena, a few descriptors) or a share of its level.
/// </summary>
public static class LeakDetector
{
    public const int MinimumSamples = 10;

    public static double WarmupSeconds(double totalSeconds) => Math.Min(60, totalSeconds / 5);

    public static Trend Judge(string figure, string unit, IReadOnlyList<(double Seconds, double Value)> samples, double warmupSeconds,
        double floor, double share)
    {
        var after = samples.Where(s => s.Seconds >= warmupSeconds).ToList();
        if (after.Count == 0) return new Trend(figure, unit, double.NaN, double.NaN, 0, floor, 1, 0);
        var start = Statistics.Median(after.Take(Math.Max(1, after.Count / 10)).Select(s => s.Value).ToList());
        var slope = Statistics.TheilSenSlope(after);
        var growth = slope * (after[^1].Seconds - after[0].Seconds);
        return new Trend(figure, unit, start, after[^1].Value, growth, Math.Max(floor, share * start),
            Statistics.MannKendallRisingP(after), after.Count);
    }
}
