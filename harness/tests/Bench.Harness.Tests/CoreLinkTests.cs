using Bench.Harness.Machine;
using Bench.Harness.Report;
using Bench.Harness.Results;

namespace Bench.Harness.Tests;

/// <summary>The round trip of a cache line between the server's and the client's core: measured before each run, named in the summary when it moved.</summary>
public class CoreLinkTests
{
    [Fact]
    public void a_round_trip_between_two_cores_is_measured_and_none_within_one()
    {
        Assert.True(Environment.ProcessorCount >= 2, "needs two CPUs");
        var ns = CoreLink.RoundTripNs(0, 1, TimeSpan.FromMilliseconds(20));
        // A cache line cannot cross cores and come back in under a nanosecond, nor in 20 ms.
        Assert.True(ns is > 1 and < 20_000_000, $"round trip {ns} ns");
        Assert.Null(CoreLink.RoundTripNs(0, 0, TimeSpan.FromMilliseconds(20)));
        Assert.Null(CoreLink.RoundTripNs(0, 4096, TimeSpan.FromMilliseconds(20))); // no such CPU to pin to
    }

    private static RunRecord Row(int repeat, double? roundTripNs, double rate) => new()
    {
        RunId = "t", Server = "csharp-memif", Client = "csharp-memif", Transport = "memif", Workload = "memif-polling", Connections = 1, PayloadBytes = 64,
        Repeat = repeat, Status = RunStatus.Ok, Ok = 1000, ReqPerS = rate, CoreRoundTripNs = roundTripNs,
    };

    private static IReadOnlyList<string> Notes(params RunRecord[] rows) => Anomalies.Explain(ExperimentStats.Group(rows).Single()).ToList();

    [Fact]
    public void the_summary_says_when_the_cores_moved_between_repeats_and_what_each_end_ran_at()
    {
        var note = Assert.Single(Notes(Row(1, 310, 6_000_000), Row(2, 98, 14_000_000), Row(3, 120, 12_000_000)));
        Assert.StartsWith("A cache line's round trip between the server's core and the client's ranged 98-310 ns before these repeats " +
                          "(the repeat after the shortest ran at 14000000 req/s, after the longest at 6000000)", note);
        Assert.Empty(Notes(Row(1, 100, 1), Row(2, 140, 1)));
        Assert.Empty(Notes(Row(1, null, 1), Row(2, 100, 1)));
    }
}
