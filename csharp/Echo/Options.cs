using System.Net;
using Bench.CommandLine;

namespace Bench.Echo;

public enum ServerDesign { ZeroByte, Async, Saea, Pipelines }

public sealed record ServerOptions(string Host, int Port, ServerDesign Design)
{
    public static ServerOptions Parse(IReadOnlyList<string> args)
    {
        var a = new CommandArguments(args, ["host", "port", "design"]);
        var design = a.Text("design", "zerobyte") switch
        {
            "async" => ServerDesign.Async,
            "zerobyte" => ServerDesign.ZeroByte,
            "saea" => ServerDesign.Saea,
            "pipelines" => ServerDesign.Pipelines,
            var other => throw new UsageException($"--design must be zerobyte, async, saea or pipelines, not '{other}'"),
        };
        var host = a.Text("host", "127.0.0.1");
        if (!IPAddress.TryParse(host, out _)) throw new UsageException($"--host must be an IP address to listen on, not '{host}'");
        return new(host, a.Integer("port", 0, 0, 65535), design);
    }
}

public enum Workload { Burst, Persistent }

public sealed record ClientOptions(
    string Host, int Port, int Connections, int Payload, Workload Workload,
    TimeSpan Duration, double Rate, string? SamplesPath, TimeSpan Timeout, TimeSpan Warmup)
{
    public static ClientOptions Parse(IReadOnlyList<string> args)
    {
        var a = new CommandArguments(args, ["host", "port", "connections", "payload", "workload", "duration", "rate", "samples", "timeout", "warmup"]);
        if (!a.Has("port")) throw new UsageException("--port is required");
        var workload = a.Text("workload", "burst") switch
        {
            "burst" => Workload.Burst,
            "persistent" => Workload.Persistent,
            var other => throw new UsageException($"--workload must be burst or persistent, not '{other}'"),
        };
        return new(
            a.Text("host", "127.0.0.1"),
            a.Integer("port", 0, 1, 65535),
            a.Integer("connections", 10_000, 1, 1_000_000),
            a.Integer("payload", 100, 1, 64 << 20),
            workload,
            TimeSpan.FromSeconds(a.Number("duration", 5, 0.001, 86_400)),
            a.Number("rate", 0, 0, 1e9),
            a.Text("samples"),
            TimeSpan.FromSeconds(a.Number("timeout", 30, 0.001, 86_400)),
            TimeSpan.FromSeconds(a.Number("warmup", 0, 0, 86_400)));
    }
}
