using System.Net;

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
        var f = new Flags(args,
            ["host", "port", "unix", "vsock", "worker-threads", "log-level", "max-message-bytes"], ["defaults"]);

        var chosen = new[] { "unix", "vsock" }.Where(f.Has).ToList();
        if (f.Has("host") || f.Has("port")) chosen.Add("host/port");
        if (chosen.Count > 1) throw new UsageException($"choose one transport, not {string.Join(" and ", chosen)}");

        ServerAddress address =
            f.Optional("unix") is { } path ? new ServerAddress.Unix(path.Length > 0 ? path : throw new UsageException("--unix needs a path"))
            : f.Optional("vsock") is { } vsock ? ServerAddress.ParseVsock(vsock)
            : f.Has("host") || f.Has("port") ? new ServerAddress.Tcp(f.Optional("host") ?? "127.0.0.1", f.Integer("port", 0, 0, 65535))
            : env("SERVER_ADDR") is { Length: > 0 } addr ? ServerAddress.Parse(addr)
            : new ServerAddress.Tcp("127.0.0.1", 0);

        var threadsText = f.Optional("worker-threads") ?? env("WORKER_THREADS");
        // Environment.ProcessorCount follows the affinity mask, so under `taskset -c 0` it is 1.
        var threads = threadsText is null ? Environment.ProcessorCount
            : Flags.ParseInteger("--worker-threads / WORKER_THREADS", threadsText, 1, 1024);

        var levelText = f.Optional("log-level") ?? env("LOG_LEVEL") ?? "Warning";
        if (!Enum.TryParse<LogLevel>(levelText, ignoreCase: true, out var level) || !Enum.IsDefined(level))
            throw new UsageException($"log level must be one of {string.Join(", ", Enum.GetNames<LogLevel>())}, not '{levelText}'");

        // 4 MiB is grpc's customary default; the bound is what keeps a hostile peer from
        // making the server buffer an arbitrarily large message (issue 6).
        var maxMessage = f.Integer("max-message-bytes", 4 << 20, 1024, 1 << 30);
        return new(address, threads, level, maxMessage, f.Has("defaults"));
    }
}
