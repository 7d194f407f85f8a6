using Bench.Harness.Catalog;
using Bench.Harness.Report;
using Bench.Harness.Run;

namespace Bench.Harness.Workloads;

/// <summary>Ethernet frames echoed over memif shared-memory rings; every memif workload's rates share one chart.</summary>
public abstract class MemifWorkload : MultiplexedWorkload
{
    public override bool RunsOver(string transport) => transport == Transports.Memif;

    /// <summary>A memif echo accepts its next connection when the last one ends (Memif.Echo's EchoServer).</summary>
    public override bool OnePeerAtATime => true;

    /// <summary>One memif connection per interface; the frames in flight are the load.</summary>
    public override int DefaultConnections(SuiteOptions o) => 1;

    /// <summary>Always one, whatever --connections says: more queues or frames in flight are the way to more load.</summary>
    public override IReadOnlyList<int> ConnectionCounts(SuiteOptions o) => [1];

    /// <summary>Minimum Ethernet frames (64 B) and the echo's 100 B, whatever --payload says; --quick the minimum only.</summary>
    protected override IReadOnlyList<int> Payloads(SuiteOptions o) => o.IsQuick ? [64] : [64, 100];

    public override ReportSection Section(ExperimentStats s) => new(30, "memif: frames over shared memory");

    public override IChartSource Charts => Rates;

    private static readonly FamilyRates Rates = new("memif-pps.png", "memif: frames/s per mode and frame size (median, min-max)",
        "frames/s", s => $"{s.Server} {((MemifWorkload)s.Workload).ShortName} {s.Payload} B");
}
