namespace Bench.Harness.Results;

/// <summary>Median, spread and a 95% confidence interval of one figure over repeats.</summary>
public sealed record Summary(int N, double Median, double Min, double Max, double Mean, double CiLow, double CiHigh)
{
    public double RelativeSpread => Median == 0 ? 0 : (Max - Min) / Median;
}

/// <summary>
/// The Hodges-Lehmann shift from base to new and its 95% confidence interval, in the figure's
/// unit and relative to the base median (NaN when that median is 0).
/// </summary>
public sealed record ShiftEstimate(double Shift, double CiLow, double CiHigh, double BaseMedian, bool Covers95)
{
    public double Relative => Relate(Shift);
    public double RelativeCiLow => Relate(CiLow);
    public double RelativeCiHigh => Relate(CiHigh);
    private double Relate(double v) => BaseMedian == 0 ? double.NaN : v / BaseMedian;
}

/// <summary>The ratio new/base (Hodges-Lehmann on logarithms) and its 95% confidence interval.</summary>
public sealed record RatioEstimate(double Ratio, double CiLow, double CiHigh, bool Covers95)
{
    /// <summary>Whether the interval leaves out 1, no change.</summary>
    public bool ExcludesOne => CiLow > 1 || CiHigh < 1;
}

/// <summary>Every statistic the reports use, in one place.</summary>
public static class Statistics
{
    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("no values");
        var s = values.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    /// <summary>The median, min-max and the 95% Student-t confidence interval of the mean.</summary>
    public static Summary Summarize(IReadOnlyList<double> values)
    {
        var n = values.Count;
        var mean = values.Average();
        double half = 0;
        if (n > 1)
        {
            var sd = Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (n - 1));
            half = StudentT975(n - 1) * sd / Math.Sqrt(n);
        }
        return new Summary(n, Median(values), values.Min(), values.Max(), mean, mean - half, mean + half);
    }

    /// <summary>The 97.5% quantile of Student's t, for a two-sided 95% interval.</summary>
    public static double StudentT975(int df)
    {
        double[] table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                          2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                          2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042];
        return df <= 0 ? double.NaN : df <= table.Length ? table[df - 1] : 1.96;
    }

    /// <summary>Exact tests enumerate every split of the pooled samples up to this many; beyond, the normal approximation.</summary>
    public const int ExactSplits = 200_000;

    /// <summary>Whether <see cref="MannWhitneyP"/> is exact for these sample sizes (C(n1 + n2, n1) splits at most <see cref="ExactSplits"/>).</summary>
    public static bool MannWhitneyIsExact(int n1, int n2) => n1 > 0 && n2 > 0 && Binomial(n1 + n2, n1) <= ExactSplits;

    /// <summary>
    /// Two-sided Mann-Whitney U (Wilcoxon rank-sum) test: the probability, if both samples came
    /// from one distribution, of a rank sum of <paramref name="a"/> at least as far from its mean
    /// as the observed one. Rank-based, so a bimodal burst (runs that hit the 1 s SYN retransmit
    /// and runs that did not) does not fool it as a t-test would be.
    /// Tied values get mid-ranks, and the test is a permutation test of that statistic: when
    /// there are at most <see cref="ExactSplits"/> ways to split the pooled values into the two
    /// sample sizes, every split is counted (so ties are handled exactly, not through a table
    /// made for untied data); beyond that, the normal approximation with the tie-corrected
    /// variance and a continuity correction of 1/2.
    /// </summary>
    public static double MannWhitneyP(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        int n1 = a.Count, n2 = b.Count, n = n1 + n2;
        if (n1 == 0 || n2 == 0) return 1;
        // Twice the mid-ranks: integers, so every comparison below is exact.
        var twice = DoubledMidRanks([.. a, .. b]);
        long observed = 0;
        for (var i = 0; i < n1; i++) observed += twice[i];
        var centre = (long)n1 * (n + 1); // twice the mean rank sum of a
        var distance = Math.Abs(observed - centre);
        if (MannWhitneyIsExact(n1, n2))
        {
            // splits[k, s]: the ways to choose k of the values seen so far with doubled rank sum s.
            // After every value, splits[n1, *] counts each of the C(n, n1) splits once.
            var maxSum = twice.Sum();
            var splits = new double[n1 + 1, maxSum + 1];
            splits[0, 0] = 1;
            for (var i = 0; i < n; i++)
                for (var k = Math.Min(n1, i + 1); k >= 1; k--)
                    for (var s = maxSum; s >= twice[i]; s--)
                        splits[k, s] += splits[k - 1, s - twice[i]];
            double extreme = 0, total = 0;
            for (var s = 0; s <= maxSum; s++)
            {
                total += splits[n1, s];
                if (Math.Abs(s - centre) >= distance) extreme += splits[n1, s];
            }
            return Math.Min(1, extreme / total);
        }
        // Normal approximation of the rank sum: mean n1 (n + 1) / 2, variance with the tie correction.
        var ties = twice.GroupBy(r => r).Sum(g => Math.Pow(g.Count(), 3) - g.Count());
        var variance = n1 * (double)n2 / 12 * (n + 1 - ties / (n * (n - 1.0)));
        if (variance <= 0) return 1;
        var z = Math.Max(0, distance / 2.0 - 0.5) / Math.Sqrt(variance);
        return Math.Min(1, 2 * UpperTail(z));
    }

    /// <summary>Twice the 1-based mid-rank of each value in the pooled list (a run of ties from rank i to j gets i + j).</summary>
    private static int[] DoubledMidRanks(IReadOnlyList<double> values)
    {
        var order = Enumerable.Range(0, values.Count).OrderBy(i => values[i]).ToArray();
        var twice = new int[values.Count];
        for (var start = 0; start < order.Length;)
        {
            var end = start;
            while (end + 1 < order.Length && values[order[end + 1]] == values[order[start]]) end++;
            for (var i = start; i <= end; i++) twice[order[i]] = start + 1 + end + 1;
            start = end + 1;
        }
        return twice;
    }

    /// <summary>C(n, k) as a double (exact for the sizes the exact test allows).</summary>
    private static double Binomial(int n, int k)
    {
        k = Math.Min(k, n - k);
        double c = 1;
        for (var i = 1; i <= k; i++) c = c * (n - k + i) / i;
        return Math.Round(c);
    }

    /// <summary>
    /// The Hodges-Lehmann estimate of the shift from <paramref name="a"/> (base) to
    /// <paramref name="b"/> (new): the median of all n1 n2 pairwise differences b_j - a_i, with
    /// its 95% confidence interval [d(k), d(n1 n2 + 1 - k)] from the order statistics of those
    /// differences. The rank k comes from the normal approximation of the Mann-Whitney U
    /// distribution, k = floor(n1 n2 / 2 - 1.96 sqrt(n1 n2 (n1 + n2 + 1) / 12)) (for 5 against 5
    /// it is 3, which the exact distribution gives too). When the samples are too small for a 95%
    /// interval (k &lt; 1, e.g. 3 against 3), the interval is every difference, from the smallest
    /// to the largest, and <see cref="ShiftEstimate.Covers95"/> is false: it covers less than 95%.
    /// </summary>
    public static ShiftEstimate HodgesLehmann(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Count == 0 || b.Count == 0) throw new ArgumentException("no values");
        var d = (from x in a from y in b select y - x).Order().ToArray();
        var m = d.Length;
        var k = (int)Math.Floor(m / 2.0 - 1.959964 * Math.Sqrt(a.Count * (double)b.Count * (a.Count + b.Count + 1) / 12));
        var covers = k >= 1;
        k = Math.Max(k, 1);
        return new ShiftEstimate(Median(d), d[k - 1], d[m - k], Median(a), covers);
    }

    /// <summary>
    /// The ratio of <paramref name="b"/> (new) to <paramref name="a"/> (base) for positive
    /// figures: the Hodges-Lehmann shift of their logarithms, so the median of all pairwise
    /// ratios b_j / a_i, with its 95% interval from the same order statistics. A ratio, unlike a
    /// difference, reads the same for a figure of 50 us and one of 50,000 req/s.
    /// </summary>
    public static RatioEstimate Ratio(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        if (a.Concat(b).Any(v => v <= 0)) throw new ArgumentException("a ratio needs positive values");
        var logs = HodgesLehmann(a.Select(v => Math.Log(v)).ToList(), b.Select(v => Math.Log(v)).ToList());
        return new RatioEstimate(Math.Exp(logs.Shift), Math.Exp(logs.CiLow), Math.Exp(logs.CiHigh), logs.Covers95);
    }

    /// <summary>
    /// The Theil-Sen slope of a series: the median of the slopes between every pair of points,
    /// so a few outliers (a garbage collection, a burst of connections) do not tilt it.
    /// </summary>
    public static double TheilSenSlope(IReadOnlyList<(double X, double Y)> points)
    {
        var slopes = new List<double>();
        for (var i = 0; i < points.Count; i++)
            for (var j = i + 1; j < points.Count; j++)
                if (points[j].X != points[i].X) slopes.Add((points[j].Y - points[i].Y) / (points[j].X - points[i].X));
        return slopes.Count == 0 ? 0 : Median(slopes);
    }

    /// <summary>
    /// The one-sided p of the Mann-Kendall trend test for a rising series (points in order of X):
    /// S counts rising pairs minus falling ones; its normal approximation with the tie
    /// correction of the variance and a continuity correction of 1.
    /// </summary>
    public static double MannKendallRisingP(IReadOnlyList<(double X, double Y)> points)
    {
        var n = points.Count;
        if (n < 3) return 1;
        long s = 0;
        for (var i = 0; i < n; i++)
            for (var j = i + 1; j < n; j++)
                s += Math.Sign(points[j].Y - points[i].Y);
        var ties = points.GroupBy(p => p.Y).Sum(g => (double)g.Count() * (g.Count() - 1) * (2 * g.Count() + 5));
        var variance = (n * (n - 1.0) * (2 * n + 5) - ties) / 18;
        if (variance <= 0 || s <= 0) return s > 0 ? 0 : 1;
        return UpperTail((s - 1) / Math.Sqrt(variance));
    }

    /// <summary>The probability that a standard normal variable exceeds z (z &gt;= 0).</summary>
    private static double UpperTail(double z) => 0.5 * Erfc(z / Math.Sqrt(2));

    private static double Erfc(double x)
    {
        // Abramowitz and Stegun 7.1.26 (x >= 0), error below 1.5e-7: plenty for a p-value.
        var t = 1 / (1 + 0.3275911 * x);
        return ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x);
    }
}
