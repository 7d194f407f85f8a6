using System.Globalization;
using Bench.Harness.Report;
using Bench.Harness.Results;
using CliWrap;
using CliWrap.Buffered;

namespace Bench.Harness.Tests;

/// <summary>runs.csv as other tools write it: ISO 8601 timestamps, CRLF line ends, RFC 4180 quoting.</summary>
public class CsvFormatTests
{
    private const string Awkward = "refused, then \"reset\"\nby peer";

    private static RunRecord Row(int repeat, DateTimeOffset at, string status = RunStatus.Ok, string error = "") => new()
    {
        RunId = "r1", Timestamp = at, Server = "csharp", Client = "cpp-epoll", Workload = "burst", Connections = 100, PayloadBytes = 100,
        Repeat = repeat, Ok = 100, WallMs = 30 + repeat, ConnPerS = 3000, ReqPerS = 3000, LatP50Us = 12.5, LatP99Us = 900,
        Bound = "client", ServerCpus = "0", ClientCpus = "1", LoadTool = "cpp-epoll", Status = status, Error = error, WarmupSteady = repeat == 1,
    };

    private static void AssertSameRows(IReadOnlyList<RunRecord> expected, IReadOnlyList<RunRecord> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
            foreach (var p in typeof(RunRecord).GetProperties().Where(p => p.CanWrite))
                Assert.Equal(p.GetValue(expected[i]), p.GetValue(actual[i]));
    }

    [Fact]
    public void a_row_written_today_has_an_iso_8601_utc_timestamp_that_round_trips()
    {
        using var dir = new TempDir();
        var now = DateTimeOffset.UtcNow;
        now = new DateTimeOffset(now.Ticks - now.Ticks % TimeSpan.TicksPerMillisecond, TimeSpan.Zero); // the column keeps milliseconds
        var elsewhere = new DateTimeOffset(2026, 11, 30, 12, 48, 54, 123, TimeSpan.FromHours(1));
        var csv = new ResultsCsv(dir.File("runs.csv"));
        csv.Append(Row(1, now));
        csv.Append(Row(2, elsewhere));

        var lines = File.ReadAllLines(csv.Path);
        Assert.Equal("timestamp", lines[0].Split(',')[1]);
        var written = lines[1].Split(',')[1];
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", written);
        Assert.Equal(now, DateTimeOffset.ParseExact(written, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal));
        Assert.Equal("2026-11-30T11:48:54.123Z", lines[2].Split(',')[1]); // converted to UTC
        Assert.DoesNotContain('\r', File.ReadAllText(csv.Path)); // written with LF line ends

        var rows = ResultsCsv.Read(csv.Path);
        Assert.Equal(now, rows[0].Timestamp);
        Assert.Equal(TimeSpan.Zero, rows[0].Timestamp.Offset);
        Assert.Equal(elsewhere, rows[1].Timestamp);
        Assert.Equal(TimeSpan.Zero, rows[1].Timestamp.Offset);
    }

    [Fact]
    public void the_sample_written_by_an_older_harness_still_reads()
    {
        var sample = Path.Combine(Repo.Root, "results", "sample", "runs.csv");
        Assert.Contains("11/30/2026 11:48:54 +00:00", File.ReadLines(sample).Skip(1).First()); // the old format
        var rows = ResultsCsv.Read(sample);
        Assert.NotEmpty(rows);
        Assert.Equal(new DateTimeOffset(2026, 11, 30, 11, 48, 54, TimeSpan.Zero), rows[0].Timestamp);
        Assert.All(rows, r => Assert.Equal(TimeSpan.Zero, r.Timestamp.Offset));

        // Old and new rows in one file read alike.
        using var dir = new TempDir();
        var mixed = dir.File("runs.csv");
        File.Copy(sample, mixed);
        new ResultsCsv(mixed).Append(Row(9, new DateTimeOffset(2026, 12, 1, 8, 0, 0, 5, TimeSpan.Zero)));
        var all = ResultsCsv.Read(mixed);
        Assert.Equal(rows.Count + 1, all.Count);
        Assert.Equal(new DateTimeOffset(2026, 12, 1, 8, 0, 0, 5, TimeSpan.Zero), all[^1].Timestamp);
    }

    /// <summary>The harness's own CSV, rewritten by Python's csv module: CRLF line ends, minimal RFC 4180 quoting.</summary>
    private static async Task<string> RewrittenByPython(string source, string target)
    {
        const string script = "import csv, sys\n" +
                              "rows = list(csv.reader(open(sys.argv[1], newline='', encoding='utf-8')))\n" +
                              "csv.writer(open(sys.argv[2], 'w', newline='', encoding='utf-8')).writerows(rows)\n";
        var result = await Cli.Wrap("python3").WithArguments(["-c", script, source, target])
            .WithValidation(CommandResultValidation.None).ExecuteBufferedAsync();
        Assert.True(result.ExitCode == 0, result.StandardError);
        return File.ReadAllText(target);
    }

    [Fact]
    public async Task a_crlf_csv_with_quoted_commas_quotes_and_line_breaks_reads_and_reports()
    {
        using var dir = new TempDir();
        var at = new DateTimeOffset(2026, 11, 30, 11, 48, 54, 250, TimeSpan.Zero);
        RunRecord[] written = [Row(1, at), Row(2, at.AddSeconds(1), RunStatus.Failed, Awkward), Row(3, at.AddSeconds(2))];
        var lf = new ResultsCsv(dir.File("lf.csv"));
        foreach (var row in written) lf.Append(row);
        Directory.CreateDirectory(dir.File("crlf"));
        var crlfPath = dir.File("crlf/runs.csv");
        var text = await RewrittenByPython(lf.Path, crlfPath);

        Assert.EndsWith("\r\n", text);
        Assert.Equal(written.Length + 1, text.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Length); // the quoted break is a bare LF
        Assert.Contains("\"refused, then \"\"reset\"\"\nby peer\"", text);

        // The CRLF copy reads exactly as the harness's own LF file does.
        AssertSameRows(ResultsCsv.Read(lf.Path), ResultsCsv.Read(crlfPath));
        var rows = ResultsCsv.Read(crlfPath);
        Assert.Equal(written.Select(r => (r.Repeat, r.Timestamp, r.Status, r.Error, r.WarmupSteady)),
            rows.Select(r => (r.Repeat, r.Timestamp, r.Status, r.Error, r.WarmupSteady)));
        Assert.Equal(Awkward, rows[1].Error);

        var summary = ReportWriter.WriteFromCsv(crlfPath, dir.File("report"));
        Assert.True(File.Exists(summary));
        Assert.Contains("3 runs, 2 ok, 1 not ok", File.ReadAllText(summary));
    }

    [Fact]
    public void a_crlf_csv_built_by_hand_with_crlf_inside_a_quoted_field_reads()
    {
        using var dir = new TempDir();
        var lf = new ResultsCsv(dir.File("lf.csv"));
        lf.Append(Row(1, new DateTimeOffset(2026, 11, 30, 11, 48, 54, TimeSpan.Zero), RunStatus.Failed, "a,\"b\"\r\nc"));
        // Every line end CRLF, the one inside the quoted field too (as a spreadsheet saves it).
        var crlf = File.ReadAllText(lf.Path).Replace("\r\n", "\n").Replace("\n", "\r\n");
        File.WriteAllText(dir.File("runs.csv"), crlf);
        var row = Assert.Single(ResultsCsv.Read(dir.File("runs.csv")));
        Assert.Equal("a,\"b\"\r\nc", row.Error);
        Assert.Equal(RunStatus.Failed, row.Status);
        Assert.True(row.WarmupSteady); // the last column: no stray CR in it
    }

    [Fact]
    public async Task a_crlf_csv_cut_off_mid_row_is_reported_as_incomplete()
    {
        using var dir = new TempDir();
        var at = new DateTimeOffset(2026, 11, 30, 11, 48, 54, TimeSpan.Zero);
        var lf = new ResultsCsv(dir.File("lf.csv"));
        lf.Append(Row(1, at));
        lf.Append(Row(2, at, RunStatus.Failed, Awkward));
        var text = await RewrittenByPython(lf.Path, dir.File("whole.csv"));
        Assert.Equal(2, ResultsCsv.Read(dir.File("whole.csv")).Count);

        var insideQuotes = text.IndexOf("\nby peer", StringComparison.Ordinal) + 1; // just after the quoted line break
        foreach (var cut in new[] { text.Length - 40, insideQuotes, text.IndexOf("\r\n", StringComparison.Ordinal) + 5 })
        {
            var path = dir.File($"cut-{cut}.csv");
            File.WriteAllText(path, text[..cut]);
            var e = Assert.Throws<CorruptResultsException>(() => ResultsCsv.Read(path));
            Assert.Contains("incomplete", e.Message);
        }
    }
}
