using System.Globalization;
using Bench.Harness.Catalog;
using Bench.Harness.Run;
using Bench.Harness.Workloads;

namespace Bench.Harness.LoadTools;

/// <summary>The contract's client arguments (docs/contract.md, "Clients"): the one place they are written.</summary>
public static class ContractArguments
{
    public static IReadOnlyList<string> Client(IReadOnlyList<string> address, Workload workload, int connections, int inFlight, int payload,
        double rate, double durationS, string? samplesPath, TimeSpan timeout, double warmupS = 0) =>
    [
        .. address,
        "--connections", connections.ToString(CultureInfo.InvariantCulture),
        "--payload", payload.ToString(CultureInfo.InvariantCulture),
        "--workload", workload.Name,
        .. workload.ClientArguments(inFlight, rate, durationS),
        .. samplesPath is null ? Array.Empty<string>() : ["--samples", samplesPath],
        "--timeout", timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture),
        .. warmupS > 0 ? ["--warmup", warmupS.ToString(CultureInfo.InvariantCulture)] : Array.Empty<string>(),
    ];

    /// <summary>A TCP endpoint as the contract passes it, to a server (where to listen) and a client (where to connect) alike.</summary>
    public static IReadOnlyList<string> Tcp(string host, int port) => ["--host", host, "--port", port.ToString(CultureInfo.InvariantCulture)];

    /// <summary>Where a client finds a server that printed this ready line.</summary>
    public static IReadOnlyList<string> Address(ReadyLine ready) => ready.Transport switch
    {
        Transports.Tcp => Tcp(ready.TcpEndpoint.Host, ready.TcpEndpoint.Port),
        Transports.Unix => ["--unix", ready.Address],
        Transports.Memif => ["--memif-socket", ready.Address],
        _ => throw new FormatException($"unknown transport '{ready.Transport}' in the ready line"),
    };
}
