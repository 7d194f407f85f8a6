using Bench.CommandLine;

namespace Bench.Epoll;

internal enum Workload { Burst, Persistent }

/// <summary>
/// The contract's client arguments (docs/contract.md), with cpp-epoll's client's ranges
/// (cpp/common/options.cpp), read by the parser every C# program shares.
/// </summary>
internal sealed record ClientOptions(
    string Host, int Port, int Connections, int Payload, Workload Workload,
    TimeSpan Duration, double Rate, string? SamplesPath, TimeSpan Timeout, TimeSpan Warmup)
{
    public static ClientOptions Parse(IReadOnlyList<string> args)
    {
        var a = new CommandArguments(args, ["host", "port", "connections", "payload", "workload", "duration", "rate", "samples", "timeout", "warmup"]);
        if (!a.Has("port")) throw new UsageException("--port is required");
        var host = a.Text("host", "127.0.0.1");
        if (host.Length == 0) throw new UsageException("--host must not be empty");
        var workload = a.Text("workload", "burst") switch
        {
            "burst" => Workload.Burst,
            "persistent" => Workload.Persistent,
            var other => throw new UsageException($"--workload must be burst or persistent, not '{other}' (this client runs burst and persistent)"),
        };
        var samples = a.Text("samples");
        if (samples is { Length: 0 }) throw new UsageException("--samples must not be empty");
        return new(
            host,
            a.Integer("port", 0, 1, 65535),
            // Beyond a million the descriptor limit and the ephemeral ports run out long before.
            a.Integer("connections", 10_000, 1, 1_000_000),
            // Payloads are streamed through a 64 KiB buffer, never held whole; the cap keeps counts sane.
            a.Integer("payload", 100, 1, 1 << 30),
            workload,
            TimeSpan.FromSeconds(a.Number("duration", 5, 0.001, 86_400)),
            a.Number("rate", 0, 0, 1e9),
            samples,
            TimeSpan.FromSeconds(a.Number("timeout", 30, 0.001, 86_400)),
            TimeSpan.FromSeconds(a.Number("warmup", 0, 0, 86_400)));
    }
}
