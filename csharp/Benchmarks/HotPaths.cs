using BenchmarkDotNet.Attributes;
using Bench.Harness.Results;

namespace Bench.Echo.Benchmarks;

/// <summary>What the client does per request besides the socket calls, and what the harness does per run.</summary>
[MemoryDiagnoser]
public class HotPaths
{
    private readonly byte[] _payload = new byte[100];
    private readonly byte[] _echo = new byte[100];
    private long[] _samples = [];
    private ConnectionTally _tally = new();
    private long _request;

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(7);
        _samples = Enumerable.Range(0, 1_000_000).Select(_ => (long)random.Next(10_000, 5_000_000)).ToArray();
        Wire.FillPayload(_echo, 3, 0);
    }

    [IterationSetup(Target = nameof(RecordLatencySample))]
    public void FreshTally() => _tally = new ConnectionTally();

    /// <summary>Fill a 100-byte payload and verify its echo: the client's per-request CPU work.</summary>
    [Benchmark]
    public bool FillAndVerify100Bytes()
    {
        Wire.FillPayload(_payload, 3, 251 * _request++); // same bytes every time: the echo always matches
        return _payload.AsSpan().SequenceEqual(_echo);
    }

    /// <summary>Append one latency sample to a connection's tally (amortised growth included).</summary>
    [Benchmark(OperationsPerInvoke = 1000)]
    public void RecordLatencySample()
    {
        for (var i = 0; i < 1000; i++) _tally.Succeed(i, 100);
    }

    /// <summary>The harness's per-run work: sort a million samples and read p50-p99.9 from them.</summary>
    [Benchmark]
    public double? PercentilesOfAMillionSamples()
    {
        var s = new LatencySamples(_samples);
        return s.PercentileUs(50) + s.PercentileUs(99) + s.PercentileUs(99.9);
    }
}
