namespace Bench.Harness.Results;

/// <summary>Median, spread and a 95% confidence interval of one figure over repeats.</summary>
public sealed record Summary(int N, double Median, double Min, double Max, double Mean, double CiLow, double CiHigh)
{
    public double RelativeSpread => Median == 0 ? 0 : (Max - Min) / Median;
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

    /// <summary>
    /// Two-sided Mann-Whitney U test: the probability of rank sums at least this far apart if
    /// both samples came from one distribution. Rank-based, so a bimodal burst (runs that hit
    /// the 1 s SYN retransmit and runs that did not) does not fool it as a t-test would be.
    /// Exact for small samples (ties get mid-ranks; the exact table then is close, not exact).
    /// </summary>
    public static double MannWhitneyP(IReadOnlyList<double> a, IReadOnlyList<double> b)
    {
        int n1 = a.Count, n2 = b.Count;
        if (n1 == 0 || n2 == 0) return 1;
        var u = 0.0;
        foreach (var x in a)
            foreach (var y in b)
                u += x > y ? 1 : x == y ? 0.5 : 0;
        var uMin = Math.Min(u, n1 * (double)n2 - u);
        if (n1 + n2 <= 40)
        {
            // counts[k] = number of arrangements whose U equals k (the classic recurrence over n1, n2).
            var dist = UDistribution(n1, n2);
            var total = dist.Sum();
            var tail = 0.0;
            for (var k = 0; k <= (int)Math.Floor(uMin); k++) tail += dist[k];
            return Math.Min(1, 2 * tail / total);
        }
        var mu = n1 * n2 / 2.0;
        var sigma = Math.Sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0);
        var z = (uMin - mu + 0.5) / sigma;
        return Math.Min(1, 2 * NormalCdf(z));
    }

    private static double[] UDistribution(int n1, int n2)
    {
        // f[i, j][k]: arrangements of i and j items with U = k; f(i,j,k) = f(i-1,j,k-j) + f(i,j-1,k).
        var f = new double[n1 + 1, n2 + 1][];
        for (var i = 0; i <= n1; i++)
            for (var j = 0; j <= n2; j++)
            {
                var cur = new double[i * j + 1];
                if (i == 0 || j == 0) cur[0] = 1;
                else
                    for (var k = 0; k <= i * j; k++)
                    {
                        var left = k - j >= 0 && k - j < f[i - 1, j].Length ? f[i - 1, j][k - j] : 0;
                        var right = k < f[i, j - 1].Length ? f[i, j - 1][k] : 0;
                        cur[k] = left + right;
                    }
                f[i, j] = cur;
            }
        return f[n1, n2];
    }

    private static double NormalCdf(double z) => 0.5 * (1 + Erf(z / Math.Sqrt(2)));

    private static double Erf(double x)
    {
        // Abramowitz and Stegun 7.1.26, error below 1.5e-7: plenty for a p-value.
        var t = 1 / (1 + 0.3275911 * Math.Abs(x));
        var y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x);
        return x >= 0 ? y : -y;
    }
}
