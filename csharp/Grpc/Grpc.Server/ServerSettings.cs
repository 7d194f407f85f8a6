using System.Net;
using Bench.CommandLine;

namespace GrpcBench.Server;

/// <summary>Everything the server is told, from arguments first and the environment second.</summary>
public sealed record ServerSettings(
    ServerAddress Address,
    int WorkerThreads,
    LogLevel LogLevel,
    int MaxMessageBytes,
    bool Defaults)
{
    public const string Usage =
        "usage: csharp-grpc-server [--host HOST] [--port PORT] | [--unix PATH] | [--vsock CID:PORT]\n" +
        "                          [--worker-threads N] [--log-level LEVEL] [--max-message-bytes N] [--defaults]\n" +
        "environment: SERVER_ADDR (host:port, unix:PATH, vsock://CID:PORT), WORKER_THREADS, LOG_LEVEL";

    public static ServerSettings Parse(IReadOnlyList<string> args, Func<string, string?> env)
    {
        var a = new CommandArguments(args,
            valued: ["host", "port", "unix", "vsock", "worker-threads", "log-level", "max-message-bytes"],
            switches: ["defaults"],
            environment: env,
            variables: new Dictionary<string, string> { ["worker-threads"] = "WORKER_THREADS", ["log-level"] = "LOG_LEVEL" });

        var chosen = new[] { "unix", "vsock" }.Where(a.Has).ToList();
        if (a.Has("host") || a.Has("port")) chosen.Add("host/port");
        if (chosen.Count > 1) throw new UsageException($"choose one transport, not {string.Join(" and ", chosen)}");

        ServerAddress address =
            a.Text("unix") is { } path ? new ServerAddress.Unix(path.Length > 0 ? path : throw new UsageException("--unix needs a path"))
            : a.Text("vsock") is { } vsock ? ServerAddress.ParseVsock(vsock)
            : a.Has("host") || a.Has("port") ? new ServerAddress.Tcp(a.Text("host", "127.0.0.1"), a.Integer("port", 0, 0, 65535))
            : a.Variable("SERVER_ADDR") is { } addr ? ServerAddress.Parse(addr)
            : new ServerAddress.Tcp("127.0.0.1", 0);

        // Environment.ProcessorCount follows the affinity mask, so under `taskset -c 0` it is 1.
        var threads = a.Integer("worker-threads", Environment.ProcessorCount, 1, 1024);

        var levelText = a.Text("log-level", "Warning");
        if (!Enum.TryParse<LogLevel>(levelText, ignoreCase: true, out var level) || !Enum.IsDefined(level))
            throw new UsageException($"{a.Origin("log-level")} must be one of {string.Join(", ", Enum.GetNames<LogLevel>())}, not '{levelText}'");

        // 4 MiB is grpc's customary default; the bound is what keeps a hostile peer from
        // making the server buffer an arbitrarily large message (issue 6).
        var maxMessage = a.Integer("max-message-bytes", 4 << 20, 1024, 1 << 30);
        return new(address, threads, level, maxMessage, a.Switch("defaults"));
    }
}
