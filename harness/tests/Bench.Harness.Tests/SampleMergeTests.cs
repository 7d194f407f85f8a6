using Bench.Harness.Remote;
using Bench.Harness.Results;

namespace Bench.Harness.Tests;

/// <summary>
/// How a multi-host run's percentiles are made from its client hosts' samples files: the samples
/// merged, so that the figures are those of every request together.
/// </summary>
public class SampleMergeTests
{
    private static readonly double[] Percentiles = [50, 90, 99, 99.9, 100];

    [Fact]
    public void merged_samples_give_the_percentiles_of_the_concatenated_samples_not_an_average_or_the_largest_of_each_files()
    {
        using var dir = new TempDir();
        var us = (int n, long micros) => Enumerable.Repeat(micros * 1000, n);
        // Three hosts whose own percentiles differ: one with a tail of 2% stalls, one steady and fast, one steady and slow.
        long[][] hosts =
        [
            [.. us(980, 100), .. us(20, 5000)],
            [.. us(1000, 300)],
            [.. us(1000, 1000)],
        ];
        var files = hosts.Select((samples, i) =>
        {
            var path = dir.File($"h{i}.bin");
            LatencySamples.WriteFile(path, samples);
            return path;
        }).ToList();

        var merged = MultiHostRunner.MergeSamples(files);
        var concatenated = LatencyHistogram.Record(hosts.SelectMany(h => h));
        var exact = new LatencySamples(hosts.SelectMany(h => h));
        Assert.Equal(3000, merged.Count);
        foreach (var p in Percentiles)
        {
            Assert.Equal(concatenated.PercentileUs(p), merged.PercentileUs(p));
            // Within the histogram's 3 significant digits of the exact nearest rank of all 3,000.
            Assert.InRange(merged.PercentileUs(p)!.Value, exact.PercentileUs(p)!.Value, exact.PercentileUs(p)!.Value * 1.001);
        }
        Assert.Equal(concatenated.MeanUs, merged.MeanUs);
        Assert.Equal(concatenated.MaxUs, merged.MaxUs);

        // p99 of all of them is the slow host's 1000 us; the hosts' own p99s are 5000, 300 and 1000 us.
        var perFile = files.Select(LatencySamples.ReadFile).ToList();
        Assert.Equal([5000.0, 300.0, 1000.0], perFile.Select(f => f.PercentileUs(99)!.Value));
        Assert.Equal(1000.0, exact.PercentileUs(99));
        var p99 = merged.PercentileUs(99)!.Value;
        var average = perFile.Average(f => f.PercentileUs(99)!.Value);
        var largest = perFile.Max(f => f.PercentileUs(99)!.Value);
        Assert.True(Math.Abs(p99 - average) > 100, $"merged p99 {p99} us is the average of the hosts' p99s ({average} us)");
        Assert.True(Math.Abs(p99 - largest) > 100, $"merged p99 {p99} us is the largest of the hosts' p99s ({largest} us)");
        // And p50 is the steady fast host's 300 us, which is neither the hosts' average p50 (466.7 us) nor their largest (1000 us).
        Assert.Equal(300.0, exact.PercentileUs(50));
        Assert.InRange(merged.PercentileUs(50)!.Value, 300, 300.3);
    }

    [Fact]
    public void a_broken_samples_file_among_them_is_an_error_naming_the_file()
    {
        using var dir = new TempDir();
        LatencySamples.WriteFile(dir.File("good.bin"), [1000, 2000]);
        File.WriteAllBytes(dir.File("torn.bin"), new byte[12]);
        var e = Assert.Throws<InvalidDataException>(() => MultiHostRunner.MergeSamples([dir.File("good.bin"), dir.File("torn.bin")]));
        Assert.StartsWith(dir.File("torn.bin"), e.Message);
    }
}
