using Bench.Harness.Catalog;
using Bench.Harness.Report;
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
