using Bench.Harness.Results;

namespace Bench.Harness.Tests;

public class StatisticsTests
{
    [Fact]
    public void summary_matches_hand_computed_values()
    {
        // mean 6, sample sd sqrt(10) = 3.1623, t(4, 0.975) = 2.776, half-width 2.776 * 3.1623 / sqrt(5) = 3.9262
        var s = Statistics.Summarize([2, 4, 6, 8, 10]);
        Assert.Equal(6, s.Median);
        Assert.Equal(2, s.Min);
        Assert.Equal(10, s.Max);
        Assert.Equal(6, s.Mean, 9);
        Assert.Equal(6 - 3.9262, s.CiLow, 3);
        Assert.Equal(6 + 3.9262, s.CiHigh, 3);
        Assert.Equal(5, Statistics.Median([1, 9, 4, 6]));
        var one = Statistics.Summarize([7]);
        Assert.Equal((7.0, 7.0), (one.CiLow, one.CiHigh));
    }

    [Fact]
    public void mann_whitney_exact_p_for_fully_separated_samples()
    {
        // U = 0: the one arrangement of C(10,5) = 252 with every A below every B, times two tails.
        Assert.Equal(2.0 / 252, Statistics.MannWhitneyP([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]), 9);
        Assert.Equal(2.0 / 252, Statistics.MannWhitneyP([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]), 9);
        // Two against two can never be significant: p = 2 * 1/6.
        Assert.Equal(1.0 / 3, Statistics.MannWhitneyP([1, 2], [3, 4]), 9);
    }

    [Fact]
    public void mann_whitney_sees_no_difference_in_interleaved_samples()
    {
        Assert.True(Statistics.MannWhitneyP([1, 3, 5, 7, 9], [2, 4, 6, 8, 10]) > 0.5);
        Assert.Equal(1, Statistics.MannWhitneyP([5, 5, 5], [5, 5, 5]));
    }

    [Fact]
    public void mann_whitney_normal_approximation_for_large_samples()
    {
        var a = Enumerable.Range(0, 30).Select(i => (double)i).ToList();
        var b = Enumerable.Range(100, 30).Select(i => (double)i).ToList();
        Assert.True(Statistics.MannWhitneyP(a, b) < 1e-6);
    }

    /// <summary>
    /// The exact two-sided p by brute force, independently of the harness: every way to choose
    /// which n1 of the pooled values are "a", each value's mid-rank as (values below) + (values
    /// equal + 1) / 2, and the share of choices whose rank sum is at least as far from its mean.
    /// </summary>
    private static double BruteForceP(double[] a, double[] b)
    {
        var pooled = a.Concat(b).ToArray();
        var rank = pooled.Select(v => pooled.Count(w => w < v) + (pooled.Count(w => w == v) + 1) / 2.0).ToArray();
        var mean = a.Length * (pooled.Length + 1) / 2.0;
        var observed = Math.Abs(rank.Take(a.Length).Sum() - mean);
        long extreme = 0, total = 0;
        void Choose(int next, int left, double sum)
        {
            if (left == 0)
            {
                total++;
                if (Math.Abs(sum - mean) >= observed - 1e-9) extreme++;
                return;
            }
            for (var i = next; i <= pooled.Length - left; i++) Choose(i + 1, left - 1, sum + rank[i]);
        }
        Choose(0, a.Length, 0);
        return (double)extreme / total;
    }

    [Fact]
    public void mann_whitney_is_exact_with_ties()
    {
        // Mid-ranks of the pooled ten: 1 -> 1, 2 -> 3, 3 -> 5.5, 4 -> 8, 5 -> 10; rank sum of a = 20.5,
        // mean 27.5, and 56 of the 252 splits lie at least 7 from it.
        double[] a = [1, 2, 2, 3, 4], b = [2, 3, 4, 4, 5];
        Assert.Equal(56.0 / 252, BruteForceP(a, b), 12);
        Assert.Equal(56.0 / 252, Statistics.MannWhitneyP(a, b), 12);

        // The case: U = 2.5 with ties. The untied table read at floor(U) = 2 gave
        // 2 * 4/252 = 0.032; counting the splits of these very ranks gives 12/252 = 0.048.
        double[] c = [1, 1, 2, 2, 4], d = [3, 3, 4, 6, 7];
        Assert.Equal(12.0 / 252, BruteForceP(c, d), 12);
        Assert.Equal(12.0 / 252, Statistics.MannWhitneyP(c, d), 12);
        Assert.Equal(12.0 / 252, Statistics.MannWhitneyP(d, c), 12);
    }

    [Fact]
    public void mann_whitney_matches_brute_force_enumeration_on_random_tied_samples()
    {
        var random = new Random(7);
        for (var trial = 0; trial < 40; trial++)
        {
            var a = Enumerable.Range(0, random.Next(1, 7)).Select(_ => (double)random.Next(0, 5)).ToArray();
            var b = Enumerable.Range(0, random.Next(1, 7)).Select(_ => (double)random.Next(0, 5)).ToArray();
            Assert.True(Statistics.MannWhitneyIsExact(a.Length, b.Length));
            Assert.Equal(BruteForceP(a, b), Statistics.MannWhitneyP(a, b), 12);
        }
    }

    [Fact]
    public void mann_whitney_normal_approximation_with_ties_is_close_to_the_exact_value()
    {
        // C(22, 11) = 705,432 splits: beyond the exact limit, so the tie-corrected normal
        // approximation answers (0.0131); the enumeration gives 7,434 / 705,432 = 0.0105.
        double[] a = [10, 11, 11, 12, 12, 12, 13, 14, 14, 15, 16], b = [12, 13, 13, 14, 15, 15, 16, 16, 17, 18, 18];
        Assert.False(Statistics.MannWhitneyIsExact(a.Length, b.Length));
        Assert.True(Statistics.MannWhitneyIsExact(10, 10)); // C(20, 10) = 184,756
        Assert.Equal(7434.0 / 705432, BruteForceP(a, b), 9);
        Assert.Equal(0.01306, Statistics.MannWhitneyP(a, b), 4);
    }

    [Fact]
    public void hodges_lehmann_shift_and_its_interval_on_a_known_example()
    {
        // The 25 differences b_j - a_i, sorted: -2 -1 0 0 1 1 2 2 2 3 3 4 4 4 5 5 6 6 6 7 7 8 8 9 10.
        // Median (13th) 4; k = floor(12.5 - 1.96 sqrt(25 * 11 / 12)) = 3, so the interval is the
        // 3rd and 23rd: [0, 8]. Base median 3.
        var s = Statistics.HodgesLehmann([1, 2, 3, 4, 5], [3, 5, 7, 9, 11]);
        Assert.Equal(4, s.Shift);
        Assert.Equal(0, s.CiLow);
        Assert.Equal(8, s.CiHigh);
        Assert.Equal(3, s.BaseMedian);
        Assert.True(s.Covers95);
        Assert.Equal(4.0 / 3, s.Relative, 12);
        Assert.Equal(0, s.RelativeCiLow, 12);
        Assert.Equal(8.0 / 3, s.RelativeCiHigh, 12);

        // 3 against 3 is too few for a 95% interval: it is the whole range of differences, flagged.
        var small = Statistics.HodgesLehmann([10, 20, 30], [12, 21, 35]);
        Assert.Equal(2, small.Shift); // differences -18 -9 -8 1 2 5 11 15 25
        Assert.Equal((-18.0, 25.0), (small.CiLow, small.CiHigh));
        Assert.False(small.Covers95);
    }
}
