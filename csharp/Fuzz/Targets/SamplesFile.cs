using Bench.Harness.Results;

namespace Fuzz.Targets;

/// <summary>
/// A client's latency samples file (<see cref="LatencySamples.ReadFile"/>) and the percentiles
/// the harness reports from it. The rejection is an <see cref="InvalidDataException"/>; a
/// negative latency, or percentiles out of order, would be a wrong figure in the report.
/// </summary>
sealed class SamplesFile() : FuzzTarget("samples-file", "LatencySamples.ReadFile and its percentiles")
{
    protected override void Feed(ReadOnlySpan<byte> input)
    {
        var samples = LatencySamples.ReadFile(Scratch.Write("samples.bin", input));
        double?[] ordered = [samples.PercentileUs(0), samples.PercentileUs(50), samples.PercentileUs(99), samples.PercentileUs(99.9), samples.MaxUs];
        if (samples.Count == 0)
        {
            if (ordered.Any(p => p is not null) || samples.MeanUs is not null) throw new InvariantException("figures from no samples");
            return;
        }
        if (ordered[0] < 0) throw new InvariantException($"a negative latency ({ordered[0]} us)");
        for (var i = 1; i < ordered.Length; i++)
            if (ordered[i] < ordered[i - 1]) throw new InvariantException($"percentiles out of order: {string.Join(", ", ordered)}");
        if (samples.MeanUs < ordered[0] || samples.MeanUs > samples.MaxUs) throw new InvariantException($"mean {samples.MeanUs} outside [{ordered[0]}, {samples.MaxUs}]");
    }

    protected override bool IsRejection(Exception e) => e is InvalidDataException;

    public override IEnumerable<(string Name, byte[] Input)> Seeds
    {
        get
        {
            static byte[] Samples(params ulong[] ns) => ns.SelectMany(BitConverter.GetBytes).ToArray();
            yield return ("three", Samples(41_000, 39_500, 1_250_000));
            yield return ("one", Samples(1));
            yield return ("empty", []);
        }
    }
}
