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
}
