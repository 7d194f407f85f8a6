using Bench.Harness.Report;
using Bench.Harness.Results;
using Bench.Harness.Run;

namespace Bench.Harness.Workloads;

/// <summary>
/// N connections held open, each echoing in turn for a duration: closed loop (send on the last
/// echo, peak throughput) and open loop (a fixed rate, latency from each intended send time).
/// </summary>
public sealed class Persistent : EchoWorkload
{
    public override string Name => "persistent";
    public override string Description => "N held connections echo for --duration, closed loop and open loop at half its rate";
    public override bool IsManifestDefault => true;
    public override int Order => 10;
    protected override string Title => "Persistent closed loop";
    protected override IReadOnlyList<(Figure, string)> BarFigures => [(Figures.ReqPerS, "rps")];

    public override int DefaultConnections(SuiteOptions o) => 1_000;

    /// <summary>The closed loop, and its open-loop twin at a given rate or at half the closed loop's measured rate.</summary>
    protected override IEnumerable<PlannedExperiment> Cells(Experiment closed, SuiteOptions o)
    {
        yield return new(closed);
        if (o.OpenLoop && o.Rate is not 0)
            yield return new(closed with { Rate = o.Rate ?? double.NaN }, o.Rate is null ? closed : null);
    }

    public override ReportSection Section(ExperimentStats s) => s.Rate > 0
        ? new(Order + 2, "Persistent, open loop (latency from each request's intended send time)")
        : new(Order + (s.IsOwnPair ? 0 : 1), s.IsOwnPair
            ? "Persistent, closed loop (peak throughput): each implementation with its own client"
            : "Persistent, closed loop: every server with one reference client");

    public override IEnumerable<DrawnChart?> Draw(ChartCanvas canvas, IReadOnlyList<ExperimentStats> stats)
    {
        foreach (var chart in base.Draw(canvas, stats)) yield return chart;
        foreach (var group in stats.Where(s => s.Rate > 0 && s.IsOwnPair).GroupBy(s => (s.Connections, s.Payload)))
            yield return canvas.Percentiles($"open-loop-{group.Key.Connections}-{group.Key.Payload}-latency.png",
                $"Open loop at half the closed-loop peak, {group.Key.Connections:N0} conn, {ChartCanvas.Bytes(group.Key.Payload)}: latency from intended send",
                group.ToList());
    }
}
