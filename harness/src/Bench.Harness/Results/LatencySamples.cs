using System.Buffers.Binary;

namespace Bench.Harness.Results;

/// <summary>
/// A client's raw latency samples (little-endian u64 nanoseconds), read and checked in one place
/// so every language's figures mean the same thing. The CSV's figures come from these samples
/// recorded into a <see cref="LatencyHistogram"/>; the exact percentiles here are what it is held to.
/// </summary>
public sealed class LatencySamples
{
    /// <summary>The folder of a result set where --keep-samples keeps the raw samples files of measured repeats.</summary>
    public const string KeptFolder = "samples";

    /// <summary>Where --keep-samples keeps a row's samples, relative to the result set: samples/&lt;row key&gt;.bin, or one file per client host (&lt;row key&gt;--&lt;host&gt;.bin).</summary>
    public static string KeptFile(RunRecord row, string? host = null) =>
        $"{KeptFolder}/{LatencyHistogram.RowKey(row)}{(host is null ? "" : "--" + LatencyHistogram.Safe(host))}.bin";

    private readonly long[] _sorted;

    public LatencySamples(IEnumerable<long> nanoseconds)
    {
        _sorted = nanoseconds.ToArray();
        Array.Sort(_sorted);
    }

    public int Count => _sorted.Length;

    /// <summary>The samples in nanoseconds, in ascending order.</summary>
    public IReadOnlyList<long> Values => _sorted;

    public static LatencySamples ReadFile(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length % 8 != 0)
            throw new InvalidDataException($"{path}: {bytes.Length} bytes is not a whole number of 8-byte samples");
        var values = new long[bytes.Length / 8];
        for (var i = 0; i < values.Length; i++)
        {
            var ns = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(i * 8));
            // Past 2^63 ns (292 years) is no latency, and as a long it would read as a negative one.
            if (ns > long.MaxValue)
                throw new InvalidDataException($"{path}: sample {i} is {ns} ns, which no latency can be");
            values[i] = (long)ns;
        }
        return new LatencySamples(values);
    }

    /// <summary>Writes samples in the contract's format, for load tools that report latency their own way.</summary>
    public static void WriteFile(string path, IEnumerable<long> nanoseconds)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write);
        Span<byte> eight = stackalloc byte[8];
        foreach (var ns in nanoseconds)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(eight, (ulong)ns);
            file.Write(eight);
        }
    }

    /// <summary>Nearest-rank percentile in microseconds: the smallest sample with at least p% of samples at or below it.</summary>
    public double? PercentileUs(double p)
    {
        if (_sorted.Length == 0) return null;
        // Rounded first so that 99.9% of 1000 is rank 999, not 1000 by a floating-point hair.
        var rank = (int)Math.Ceiling(Math.Round(p / 100.0 * _sorted.Length, 9));
        return _sorted[Math.Clamp(rank - 1, 0, _sorted.Length - 1)] / 1000.0;
    }

    public double? MaxUs => _sorted.Length == 0 ? null : _sorted[^1] / 1000.0;

    public double? MeanUs => _sorted.Length == 0 ? null : _sorted.Average(v => (double)v) / 1000.0;
}
