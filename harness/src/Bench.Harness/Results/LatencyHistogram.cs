using System.Globalization;
using HdrHistogram;

namespace Bench.Harness.Results;

/// <summary>
/// One run's latency distribution as an HdrHistogram, in nanoseconds with 3 significant digits:
/// every value it reports is within 0.1% of a recorded sample. The CSV's latency figures are read
/// from it, and it is kept as a standard HdrHistogram log (histograms/&lt;row key&gt;.hlog) that
/// HdrHistogram's own tools load, and that merge without loss by adding histograms.
/// </summary>
public sealed class LatencyHistogram
{
    public const int SignificantDigits = 3;

    /// <summary>A day: no request of any run waits longer (a client is killed after minutes), and the range sets the memory (about 300 KiB).</summary>
    public const long HighestTrackableNs = 86_400_000_000_000;

    /// <summary>The folder of a result set that holds one log per measured run.</summary>
    public const string Folder = "histograms";

    public HistogramBase Histogram { get; }

    private LatencyHistogram(HistogramBase histogram) => Histogram = histogram;

    public long Count => Histogram.TotalCount;

    public static LatencyHistogram Record(IEnumerable<long> nanoseconds)
    {
        var histogram = new LongHistogram(HighestTrackableNs, SignificantDigits);
        foreach (var ns in nanoseconds)
        {
            if (ns > HighestTrackableNs)
                throw new InvalidDataException($"a latency sample of {ns} ns is longer than a day, which no run allows");
            histogram.RecordValue(ns);
        }
        return new LatencyHistogram(histogram);
    }

    /// <summary>
    /// Nearest rank, as the exact figures were computed before the histogram: the smallest
    /// recorded value with at least p% of the samples at or below it, reported as the highest
    /// value its bucket stands for (HdrHistogram's own convention).
    /// </summary>
    public double? PercentileUs(double p)
    {
        if (Count == 0) return null;
        // Rounded first so that 99.9% of 1000 is rank 999, not 1000 by a floating-point hair.
        var rank = Math.Clamp((long)Math.Ceiling(Math.Round(p / 100.0 * Count, 9)), 1, Count);
        long below = 0;
        foreach (var bucket in Histogram.RecordedValues())
        {
            below += bucket.CountAddedInThisIterationStep;
            if (below >= rank) return Histogram.HighestEquivalentValue(bucket.ValueIteratedTo) / 1000.0;
        }
        throw new InvalidOperationException("the histogram's buckets hold fewer samples than its total count");
    }

    public double? MaxUs => Count == 0 ? null : Histogram.GetMaxValue() / 1000.0;

    public double? MeanUs => Count == 0 ? null : Histogram.GetMean() / 1000.0;

    /// <summary>Sets the row's latency columns from this histogram.</summary>
    public void Fill(RunRecord row)
    {
        row.LatP50Us = PercentileUs(50);
        row.LatP90Us = PercentileUs(90);
        row.LatP99Us = PercentileUs(99);
        row.LatP999Us = PercentileUs(99.9);
        row.LatMaxUs = MaxUs;
        row.LatMeanUs = MeanUs;
    }

    /// <summary>
    /// Writes the histogram as a log of one interval, untagged: HdrHistogram's log processor
    /// reads only untagged intervals unless told a tag, and the file name already says which run it is.
    /// </summary>
    public void WriteLog(string path, DateTimeOffset start, DateTimeOffset end)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Histogram.StartTimeStamp = start.ToUnixTimeMilliseconds();
        Histogram.EndTimeStamp = end.ToUnixTimeMilliseconds();
        // HdrHistogram.NET writes UTF-16; the log format, and the Java and JavaScript tools that read
        // it (HistogramLogProcessor, the plotter), are plain ASCII text.
        var utf16 = new MemoryStream();
        HistogramLogWriter.Write(utf16, start.UtcDateTime, Histogram);
        using var text = new StreamReader(new MemoryStream(utf16.ToArray()), detectEncodingFromByteOrderMarks: true);
        File.WriteAllText(path, text.ReadToEnd(), System.Text.Encoding.ASCII);
    }

    /// <summary>Reads a log back: every interval in it added into one histogram.</summary>
    /// <remarks>
    /// Read here, not with HdrHistogram.NET's HistogramLogReader: its reader (2.5.0, the newest
    /// served here) reads the deflated histogram with one Stream.Read, which a DeflateStream may
    /// answer in part, and then fails on a well-formed log ("The buffer does not contain the
    /// indicated payload amount", HdrHistogram.NET issue 99): it did on runs with a wide spread of
    /// latencies. Each interval line ends in the base64 of a compressed histogram: an encoding
    /// cookie, the deflated length (both big-endian int32), then zlib data.
    /// </remarks>
    public static LatencyHistogram ReadLog(string path)
    {
        var total = new LongHistogram(HighestTrackableNs, SignificantDigits);
        foreach (var line in File.ReadLines(path))
        {
            // Comments, the legend line ("StartTimestamp",...) and the start and base-time lines carry no histogram.
            if (line.Length == 0 || line[0] is '#' or '"' || line.StartsWith("StartTime", StringComparison.Ordinal)) continue;
            total.Add(Decompress(line[(line.LastIndexOf(',') + 1)..], path));
        }
        return new LatencyHistogram(total);
    }

    private static HistogramBase Decompress(string base64, string path)
    {
        try
        {
            var bytes = Convert.FromBase64String(base64);
            var length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(4, 4));
            using var zlib = new System.IO.Compression.ZLibStream(new MemoryStream(bytes, 8, length), System.IO.Compression.CompressionMode.Decompress);
            var plain = new MemoryStream();
            zlib.CopyTo(plain); // reads to the end, however the stream splits it
            return HistogramEncoding.DecodeFromByteBuffer(HdrHistogram.Utilities.ByteBuffer.Allocate(plain.ToArray()), 0, null);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or IOException or InvalidDataException or IndexOutOfRangeException)
        {
            throw new FormatException($"{path}: not an HdrHistogram log interval ({e.Message})", e);
        }
    }

    /// <summary>Several runs' logs added into one histogram: HdrHistogram merges without loss.</summary>
    public static LatencyHistogram Merge(IEnumerable<string> paths)
    {
        var total = new LongHistogram(HighestTrackableNs, SignificantDigits);
        foreach (var path in paths) total.Add(ReadLog(path).Histogram);
        return new LatencyHistogram(total);
    }

    /// <summary>The log of one measured run in its result set: histograms/&lt;row key&gt;.hlog.</summary>
    public static string LogPath(string resultSet, RunRecord row) => Path.Combine(resultSet, LogFile(row));

    /// <summary>The log's path relative to its result set, as the results page links it.</summary>
    public static string LogFile(RunRecord row) => $"{Folder}/{RowKey(row)}.hlog";

    /// <summary>A row's name in file names (docs/results.md): what defines it and its repeat, safe in any file system.</summary>
    public static string RowKey(RunRecord row) => Safe(string.Create(CultureInfo.InvariantCulture,
        $"{row.Server}--{row.Generator}--{row.Transport}--{row.Workload}--c{row.Connections}-f{row.InFlight ?? row.Connections}-p{row.PayloadBytes}-r{row.Rate}--{row.Repeat}"));

    /// <summary>Any character but letters, digits, '-', '_' and '.' as '_'.</summary>
    public static string Safe(string name) => string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_'));
}
