using System.Globalization;
using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Report;
using Bench.Harness.Results;
using Bench.Harness.Run;

namespace Bench.Harness.Workloads;

/// <summary>gRPC calls over HTTP/2 (csharp/Grpc's bench.proto); every gRPC workload's rates share one chart.</summary>
public abstract class GrpcWorkload : MultiplexedWorkload
{
    public override bool RunsOver(string transport) => transport is Transports.Tcp or Transports.Unix;

    /// <summary>Two HTTP/2 connections: the server then works on one connection's batch while the other's arrives.</summary>
    public override int DefaultConnections(SuiteOptions o) => 2;

    public override ReportSection Section(ExperimentStats s) => new(20, "gRPC: calls over HTTP/2");

    public override IChartSource Charts => Rates;

    /// <summary>
    /// grpc_bench's table: every server under the same load, per load generator, fastest first,
    /// with its rate as a share of the fastest's, and each client's rate against h2load's on the
    /// same server (how much of the server the client could measure).
    /// </summary>
    public override IEnumerable<string> Tables(IReadOnlyList<ExperimentStats> stats)
    {
        Figure[] figures = [Figures.P50, Figures.P99, Figures.P999, Figures.ServerCpuPerRequest, Figures.ServerRss];
        foreach (var cell in stats.Where(s => s.Rate == 0 && s.ReqPerS is not null)
                     .GroupBy(s => (s.Transport, s.Connections, s.InFlight, s.Payload)).Where(g => g.Select(s => s.Server).Distinct().Count() > 1))
        {
            var (transport, conns, inFlight, payload) = cell.Key;
            yield return $"## gRPC servers side by side: {ShortName}, {transport}, {conns} connections, {inFlight} calls in flight, {ChartCanvas.Bytes(payload)}";
            yield return "";
            yield return "| server | load generator | calls/s | of the fastest | " + string.Join(" | ", figures.Select(f => f.Heading)) + $" | bound | client / {H2Load.Name} |";
            yield return "|---|---|---|---|" + string.Concat(figures.Select(_ => "---|")) + "---|---|";
            foreach (var generator in cell.GroupBy(s => s.Generator).OrderBy(g => g.Key.Length == 0 ? 1 : 0).ThenBy(g => g.Key, StringComparer.Ordinal))
            {
                var fastest = generator.Max(s => s.ReqPerS!.Median);
                foreach (var s in generator.OrderByDescending(s => s.ReqPerS!.Median))
                {
                    var tool = s.Client.Length == 0 ? null : cell.FirstOrDefault(t => t.Server == s.Server && t.Generator == H2Load.Name);
                    var versus = tool is null ? "-" : string.Create(CultureInfo.InvariantCulture, $"{s.ReqPerS!.Median / tool.ReqPerS!.Median:F2}x");
                    yield return string.Create(CultureInfo.InvariantCulture,
                        $"| {s.Server} | {s.Generator} | {s.ReqPerS!.Median:F0} | {s.ReqPerS.Median / fastest:F2} | ") +
                        string.Join(" | ", figures.Select(s.Median)) + $" | {s.Bound} | {versus} |";
                }
            }
            yield return "";
            yield return "<sub>Medians of the good repeats; **of the fastest**: calls/s over the fastest server's under the same load generator; " +
                $"**client / {H2Load.Name}**: that client's calls/s over {H2Load.Name}'s against the same server (below 1: the client, not the server, set the figure).</sub>";
            yield return "";
        }
    }

    /// <summary>The lean C# client (--grpc-client), even when not chosen itself: it speaks gRPC to any server, so every server is loaded alike.</summary>
    protected override Implementation? SharedClient(SuitePlanContext p)
    {
        var name = p.Options.GrpcClient;
        var client = p.Catalog.All.FirstOrDefault(i => i.Name == name)
            ?? throw new ArgumentException($"--grpc-client: no implementation named '{name}'");
        return client.HasClient && client.Workloads.Contains(this) ? client
            : throw new ArgumentException($"--grpc-client: {name} has no client for {Name}");
    }

    // memif moves millions of frames a second, gRPC a few hundred thousand calls: one scale each.
    private static readonly FamilyRates Rates = new("grpc-rps.png", "gRPC: calls/s per workload, transport and load tool (median, min-max)",
        "calls/s", s => $"{s.Pair} {((GrpcWorkload)s.Workload).ShortName} {s.Transport}");
}
