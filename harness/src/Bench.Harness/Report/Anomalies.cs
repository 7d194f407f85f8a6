using System.Globalization;

namespace Bench.Harness.Report;

/// <summary>Plain-words notes on what the kernel's counters and the cores say about a figure.</summary>
public static class Anomalies
{
    public static IEnumerable<string> Explain(ExperimentStats e)
    {
        var overflows = e.Runs.Sum(r => r.ListenOverflows ?? 0);
        var synRetrans = e.Runs.Sum(r => r.SynRetrans ?? 0);
        if (overflows > 0 || synRetrans > 0)
            yield return Invariant($"The listen queue overflowed {overflows} times and the kernel retransmitted {synRetrans} SYNs over {e.Runs.Count} runs. ") +
                                   "A dropped SYN waits out the client's 1 s retransmit timer (then 3 s), so these wall times and the tail latency include " +
                                   "whole seconds of waiting that are not server work: compare the min with the median.";
        if (e.Bound == Run.Bottleneck.Client)
            yield return $"The load generator's core ({e.Generator}) was saturated and the server's was not: this figure is the load generator's limit, not the server's.";
        if (e.Bound == Run.Bottleneck.Both)
            yield return "Both cores were saturated: the client and the server share the limit.";
        if (e.Failed > 0)
            yield return Invariant($"{e.Failed} requests failed; failed runs are left out of the figures.");
        if (e.Wall is { N: > 1 } wall && wall.RelativeSpread > 0.25 && overflows == 0 && synRetrans == 0)
            yield return Invariant($"The repeats spread by {wall.RelativeSpread * 100:0}% of the median: differences smaller than that are noise.");
        foreach (var status in e.Statuses) yield return status;
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
