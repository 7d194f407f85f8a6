using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Report;
using Bench.Harness.Results;
using Bench.Harness.Run;

namespace Bench.Harness.Workloads;

/// <summary>
/// The classic workload: N clients connect at once, send one payload, read the echo, close.
/// Mostly kernel work (SYN, accept, close); measures connection setup under load.
/// </summary>
public sealed class Burst : EchoWorkload
{
    public override string Name => "burst";
    public override string Description => "N connections at once, each connects, echoes one payload and closes";
    public override bool IsManifestDefault => true;
    public override int Order => 0;
    public override bool OneConnectionPerRequest => true;
    public override bool IsTimed => false;
    public override Figure Headline => Figures.WallMs;
    protected override string Title => "Burst";
    protected override IReadOnlyList<(Figure, string)> BarFigures => [(Figures.WallMs, "wall"), (Figures.ConnPerS, "connps")];

    /// <summary>The classic 10,000 clients; --quick keeps 1,000 (as many as its held connections).</summary>
    public override int DefaultConnections(SuiteOptions o) => o.IsQuick ? 1_000 : 10_000;

    /// <summary>--matrix: every echo client against every echo server, drawn as a heatmap.</summary>
    public override IEnumerable<PlannedExperiment> PlanMatrix(SuitePlanContext p)
    {
        var echo = p.Chosen.Where(i => SpeaksEcho(i) && i.Workloads.Contains(this)).ToList();
        foreach (var server in echo.Where(i => i.HasServer))
            foreach (var client in echo.Where(i => i.HasClient))
                foreach (var c in p.ConnectionsFor(this))
                    yield return new(p.Experiment(server, LoadGenerator.ClientOf(client), Transports.Tcp, this, c, c, p.Options.Payloads[0]));
    }

    public override IEnumerable<DrawnChart?> Draw(ChartCanvas canvas, IReadOnlyList<ExperimentStats> stats) =>
        [.. base.Draw(canvas, stats), canvas.Heatmap("matrix-heatmap.png", stats.Where(s => s.Transport == Transports.Tcp && s.Rate == 0).ToList())];
}
