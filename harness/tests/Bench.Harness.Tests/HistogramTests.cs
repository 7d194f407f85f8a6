using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Results;
using Bench.Harness.Run;
using Bench.Harness.Workloads;
using HdrHistogram;

namespace Bench.Harness.Tests;

/// <summary>The latency figures come from an HdrHistogram, kept as a log that reads back to the same figures.</summary>
public class HistogramTests
{
    private static readonly double[] Percentiles = [0, 1, 50, 90, 99, 99.9, 99.99, 100];

    /// <summary>HdrHistogram's precision at 3 significant digits: a reported value is within 1/1000 of the sample it stands for.</summary>
    private static void AssertWithinPrecision(double? exact, double? fromHistogram, string what)
    {
        Assert.NotNull(exact);
        Assert.NotNull(fromHistogram);
        Assert.True(Math.Abs(fromHistogram!.Value - exact!.Value) <= exact.Value / 1000,
            $"{what}: the histogram says {fromHistogram} us, the samples {exact} us");
    }

    [Fact]
    public void histogram_percentiles_equal_the_exact_nearest_rank_ones_within_its_precision()
    {
        // A latency-like spread: a log-normal body from 10 us up, and one sample in a thousand a stall of 1-2 s.
        var random = new Random(7);
        var ns = Enumerable.Range(0, 200_003).Select(_ => random.Next(1000) == 0
            ? 1_000_000_000L + random.NextInt64(1_000_000_000)
            : 10_000L + (long)Math.Exp(8 + 2 * random.NextDouble() * random.NextDouble() * 3)).ToList();
        var exact = new LatencySamples(ns);
        var histogram = LatencyHistogram.Record(ns);
        Assert.Equal(ns.Count, histogram.Count);
        foreach (var p in Percentiles) AssertWithinPrecision(exact.PercentileUs(p), histogram.PercentileUs(p), $"p{p}");
        AssertWithinPrecision(exact.MaxUs, histogram.MaxUs, "max");
        AssertWithinPrecision(exact.MeanUs, histogram.MeanUs, "mean");
        // Nearest rank, not interpolation: three samples far apart give back each of them.
        var three = LatencyHistogram.Record([1_000_000, 2_000_000, 3_000_000]);
        AssertWithinPrecision(1000, three.PercentileUs(33), "p33 of three");
        AssertWithinPrecision(2000, three.PercentileUs(50), "p50 of three");
        AssertWithinPrecision(3000, three.PercentileUs(100), "p100 of three");
        Assert.Null(LatencyHistogram.Record([]).PercentileUs(50));
    }

    [Fact]
    public void a_sample_longer_than_the_histogram_can_hold_is_an_error_not_a_clamped_value()
    {
        Assert.Throws<InvalidDataException>(() => LatencyHistogram.Record([5, LatencyHistogram.HighestTrackableNs + 1]));
    }

    [Fact]
    public void a_log_of_widely_spread_latencies_reads_back_whole_where_hdrhistogram_nets_own_reader_fails()
    {
        // As a run at 10,000 held connections spreads them: from microseconds to seconds.
        var random = new Random(7);
        var samples = Enumerable.Range(0, 700_000).Select(_ => (long)Math.Pow(10, 3 + 6.5 * random.NextDouble())).ToList();
        var written = LatencyHistogram.Record(samples);
        using var dir = new TempDir();
        var path = dir.File("wide.hlog");
        written.WriteLog(path, DateTimeOffset.UnixEpoch.AddSeconds(1), DateTimeOffset.UnixEpoch.AddSeconds(6));

        // The reason for the harness's own reader (HdrHistogram.NET issue 99): if the library is fixed, this says so.
        using (var file = File.OpenRead(path))
            Assert.Throws<ArgumentException>(() => new HistogramLogReader(file).ReadHistograms().ToList());

        var read = LatencyHistogram.ReadLog(path);
        Assert.Equal(samples.Count, read.Count);
        foreach (var p in new[] { 50.0, 99, 99.9, 100 })
            Assert.Equal(written.PercentileUs(p), read.PercentileUs(p));
    }

    [Fact]
    public void a_damaged_log_is_an_error_naming_the_file()
    {
        using var dir = new TempDir();
        var path = dir.File("damaged.hlog");
        File.WriteAllText(path, "#[Histogram log format version 1.3]\n0.000,5.000,1.000,HISTFAAAAnot-base64!\n");
        var e = Assert.Throws<FormatException>(() => LatencyHistogram.ReadLog(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public async Task each_measured_run_writes_an_hdrhistogram_log_that_reads_back_to_its_csv_figures()
    {
        using var results = new TempDir();
        using var scratch = new TempDir();
        var python = await Repo.BuiltAsync("python-asyncio");
        var runner = new ExperimentRunner(new RunSettings(Repeats: 2, Warmups: 1, KeepSamples: true),
            new ResultsCsv(results.File("runs.csv")), "test", scratch.Path, new Progress(2, TextWriter.Null));
        var burst = Workload.Get<Burst>();
        await runner.RunAsync(new Experiment(python, LoadGenerator.ClientOf(python), Transports.Tcp, burst, 50, 50, 64, 0, 0), CancellationToken.None);

        var rows = ResultsCsv.Read(results.File("runs.csv"));
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal(RunStatus.Ok, r.Status));
        // The warm-up and the check are not recorded: one log per measured repeat, nothing else.
        Assert.Equal(rows.Select(r => LatencyHistogram.LogPath(results.Path, r)).Order(),
            Directory.GetFiles(Path.Combine(results.Path, LatencyHistogram.Folder)).Order());
        foreach (var row in rows)
        {
            var path = LatencyHistogram.LogPath(results.Path, row);
            // Plain ASCII text, as the format and HdrHistogram's Java and JavaScript tools read it.
            Assert.All(File.ReadAllBytes(path), b => Assert.InRange(b, (byte)1, (byte)127));
            Assert.StartsWith("#[Histogram log format version", File.ReadLines(path).First());
            using (var file = File.OpenRead(path))
            using (var reader = new HistogramLogReader(file))
            {
                var interval = Assert.Single(reader.ReadHistograms());
                Assert.Equal(row.Ok, interval.TotalCount);
                Assert.True(interval.EndTimeStamp >= interval.StartTimeStamp && interval.StartTimeStamp > 0);
            }
            var readBack = new RunRecord();
            LatencyHistogram.ReadLog(path).Fill(readBack);
            Assert.Equal((row.LatP50Us, row.LatP90Us, row.LatP99Us, row.LatP999Us, row.LatMaxUs),
                (readBack.LatP50Us, readBack.LatP90Us, readBack.LatP99Us, readBack.LatP999Us, readBack.LatMaxUs));
            Assert.Equal(row.LatMeanUs!.Value, readBack.LatMeanUs!.Value, 6);
        }

        // --keep-samples keeps each measured repeat's raw samples in the result set, and the CSV's figures are theirs within the histogram's precision.
        foreach (var row in rows)
        {
            var match = LatencySamples.ReadFile(Path.Combine(results.Path, LatencySamples.KeptFile(row)));
            Assert.Equal(50, match.Count);
            Assert.True(Math.Abs(match.MaxUs!.Value - row.LatMaxUs!.Value) <= match.MaxUs.Value / 1000);
            AssertWithinPrecision(match.PercentileUs(99), row.LatP99Us, "p99");
            AssertWithinPrecision(match.MeanUs, row.LatMeanUs, "mean");
        }
    }
}
