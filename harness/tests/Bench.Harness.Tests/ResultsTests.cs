using Bench.Harness.Results;

namespace Bench.Harness.Tests;

public class ResultsTests
{
    private static RunRecord Sample(int repeat, double wall) => new()
    {
        RunId = "r1", Timestamp = new DateTimeOffset(2026, 11, 30, 10, 0, 0, TimeSpan.Zero), Server = "csharp", Client = "cpp-epoll",
        Workload = "burst", Connections = 10000, PayloadBytes = 100, Repeat = repeat, Ok = 10000, Failed = 0, WallMs = wall,
        ConnPerS = 10000 / wall * 1000, ReqPerS = 10000 / wall * 1000, LatP50Us = 12.5, LatP99Us = 1000, LatP999Us = null,
        ListenOverflows = 3, SynRetrans = 3, Bound = "client", Status = RunStatus.Ok, Error = "a, \"quoted\"\nmessage",
    };

    [Fact]
    public void csv_round_trips_every_column()
    {
        using var dir = new TempDir();
        var csv = new ResultsCsv(dir.File("runs.csv"));
        csv.Append(Sample(1, 612.5));
        csv.Append(Sample(2, 1650.25));
        var rows = ResultsCsv.Read(csv.Path);
        Assert.Equal(2, rows.Count);
        foreach (var p in typeof(RunRecord).GetProperties().Where(p => p.CanWrite))
            Assert.Equal(p.GetValue(Sample(2, 1650.25)), p.GetValue(rows[1]));
    }

    [Fact]
    public void csv_header_is_the_documented_schema()
    {
        using var dir = new TempDir();
        var csv = new ResultsCsv(dir.File("runs.csv"));
        csv.Append(Sample(1, 1));
        var header = File.ReadLines(csv.Path).First().Split(',');
        string[] required = ["run_id", "timestamp", "server", "client", "transport", "workload", "connections", "payload_bytes", "repeat",
            "ok", "failed", "wall_ms", "conn_per_s", "req_per_s", "lat_p50_us", "lat_p90_us", "lat_p99_us", "lat_p999_us", "lat_max_us", "status", "error"];
        Assert.Empty(required.Except(header));
        var documented = File.ReadAllText(Path.Combine(Repo.Root, "docs", "results.md"));
        Assert.All(header, column => Assert.Contains($"`{column}`", documented));
    }

    [Fact]
    public void half_written_csv_is_reported_not_read()
    {
        using var dir = new TempDir();
        var csv = new ResultsCsv(dir.File("runs.csv"));
        csv.Append(Sample(1, 1));
        csv.Append(Sample(2, 2));
        var text = File.ReadAllText(csv.Path);
        File.WriteAllText(csv.Path, text[..^40]); // killed mid-row
        var e = Assert.Throws<CorruptResultsException>(() => ResultsCsv.Read(csv.Path));
        Assert.Contains("incomplete", e.Message);
    }

    [Fact]
    public void row_with_missing_fields_is_reported_with_its_line()
    {
        using var dir = new TempDir();
        var csv = new ResultsCsv(dir.File("runs.csv"));
        csv.Append(Sample(1, 1));
        File.AppendAllText(csv.Path, "r1,2026-11-30,csharp\n");
        var e = Assert.Throws<CorruptResultsException>(() => ResultsCsv.Read(csv.Path));
        Assert.Contains("line 4", e.Message); // the first row's quoted error spans two lines
    }

    [Fact]
    public void a_file_that_is_not_a_runs_csv_is_rejected()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("other.csv"), "a,b\n1,2\n");
        Assert.Throws<CorruptResultsException>(() => ResultsCsv.Read(dir.File("other.csv")));
    }

    [Fact]
    public void percentiles_follow_nearest_rank()
    {
        // 1..1000 microseconds in nanoseconds, shuffled: p50 is the 500th, p99 the 990th, p99.9 the 999th.
        var values = Enumerable.Range(1, 1000).Select(v => v * 1000L).OrderBy(v => (v * 7919) % 1009).ToList();
        var s = new LatencySamples(values);
        Assert.Equal(500, s.PercentileUs(50));
        Assert.Equal(900, s.PercentileUs(90));
        Assert.Equal(990, s.PercentileUs(99));
        Assert.Equal(999, s.PercentileUs(99.9));
        Assert.Equal(1000, s.MaxUs);
        Assert.Equal(500.5, s.MeanUs);
        Assert.Equal(3, new LatencySamples([3000, 1000, 2000]).PercentileUs(100));
        Assert.Equal(1, new LatencySamples([3000, 1000, 2000]).PercentileUs(0));
        Assert.Null(new LatencySamples([]).PercentileUs(50));
    }

    [Fact]
    public void samples_file_is_little_endian_u64_and_a_torn_file_is_an_error()
    {
        using var dir = new TempDir();
        var bytes = new byte[24];
        BitConverter.TryWriteBytes(bytes.AsSpan(0), 5_000UL);
        BitConverter.TryWriteBytes(bytes.AsSpan(8), 1_000UL);
        BitConverter.TryWriteBytes(bytes.AsSpan(16), 3_000UL);
        File.WriteAllBytes(dir.File("s.bin"), bytes);
        var s = LatencySamples.ReadFile(dir.File("s.bin"));
        Assert.Equal(3, s.Count);
        Assert.Equal(3, s.PercentileUs(50));
        File.WriteAllBytes(dir.File("torn.bin"), bytes[..20]);
        Assert.Throws<InvalidDataException>(() => LatencySamples.ReadFile(dir.File("torn.bin")));
    }
}
