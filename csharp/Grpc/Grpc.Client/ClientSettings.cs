using Bench.CommandLine;
using GrpcBench.Protos;

namespace GrpcBench.Client;

public enum Workload { Unary, Stream, Crypto }

public enum Service { Echo, Crypto, Both }

public enum EngineKind { Lean, GrpcNet }

/// <summary>Everything the load client is told, from arguments first and the environment second.</summary>
/// <param name="InFlight">calls in flight at once (`--in-flight`): one call slot each</param>
/// <param name="Connections">HTTP/2 connections the calls share (`--connections`)</param>
/// <param name="ConnectionsGiven">whether `--connections` (or CONNECTIONS) was given, or the client chose</param>
public sealed record ClientSettings(
    ServerAddress Address,
    int InFlight,
    int Connections,
    int Payload,
    Workload Workload,
    Service Service,
    TimeSpan Duration,
    long? Requests,
    double Rate,
    string? SamplesPath,
    TimeSpan Timeout,
    TimeSpan Warmup,
    bool AutoWarmup,
    TimeSpan WarmupCap,
    SignatureAlgorithm[] Algorithms,
    EngineKind Engine,
    int StreamDepth = 1,
    bool ConnectionsGiven = false)
{
    /// <summary>Calls in flight when `--in-flight` is not given: the harness suite's default.</summary>
    public const int DefaultInFlight = 200;

    /// <summary>Streams the tuned server allows on one connection; the default connection count follows from it.</summary>
    public const int StreamsPerConnection = 1000;

    public const string Usage =
        "usage: csharp-grpc-client [--host HOST] --port PORT | --unix PATH | --vsock CID:PORT\n" +
        "         [--in-flight N]          calls in flight at once (default 200)\n" +
        "         [--connections N]        HTTP/2 connections they share (default: enough for the calls at 1,000\n" +
        "                                  streams per connection, at least 2, at most one per call)\n" +
        "         [--payload BYTES] [--workload grpc-unary|grpc-stream|grpc-crypto] [--service echo|crypto|both]\n" +
        "         [--duration S] [--requests N] [--rate REQ_PER_S] [--samples PATH] [--timeout S]\n" +
        "         [--warmup S|auto] [--warmup-cap S] [--algorithm NAME[,NAME..]] [--engine lean|grpcnet]\n" +
        "         [--stream-depth D]       grpc-stream: D calls pipelined on each stream (default 1: ping-pong)\n" +
        "environment: SERVER_ADDR, TRANSPORT, CONNECTIONS (HTTP/2 connections), IN_FLIGHT (calls), REQUESTS,\n" +
        "             RATE_LIMIT, SERVICE, DURATION";

    public static ClientSettings Parse(IReadOnlyList<string> args, Func<string, string?> env)
    {
        var a = new CommandArguments(args,
            valued: ["host", "port", "unix", "vsock", "connections", "in-flight", "payload", "workload", "service", "duration",
                     "requests", "rate", "samples", "timeout", "warmup", "warmup-cap", "algorithm", "engine", "stream-depth"],
            environment: env,
            variables: new Dictionary<string, string>
            {
                ["connections"] = "CONNECTIONS", ["in-flight"] = "IN_FLIGHT", ["requests"] = "REQUESTS",
                ["rate"] = "RATE_LIMIT", ["service"] = "SERVICE", ["duration"] = "DURATION",
            },
            retired: new Dictionary<string, string>
            {
                ["channels"] = "use --connections N for HTTP/2 connections and --in-flight N for calls in flight",
            });

        var address = ParseAddress(a);
        var workload = a.Text("workload", "grpc-unary") switch
        {
            "grpc-unary" => Workload.Unary,
            "grpc-stream" => Workload.Stream,
            "grpc-crypto" => Workload.Crypto,
            var other => throw new UsageException($"--workload must be grpc-unary, grpc-stream or grpc-crypto, not '{other}'"),
        };
        var service = a.Text("service") switch
        {
            null => workload == Workload.Crypto ? Service.Crypto : Service.Echo,
            "echo" => Service.Echo,
            "crypto" => Service.Crypto,
            "both" => Service.Both,
            var other => throw new UsageException($"{a.Origin("service")} must be echo, crypto or both, not '{other}'"),
        };
        if (workload == Workload.Stream && service != Service.Echo)
            throw new UsageException("grpc-stream streams the echo service; --service must be echo");
        if (workload == Workload.Crypto && service == Service.Echo)
            throw new UsageException("grpc-crypto calls the crypto service; --service must be crypto or both");

        var inFlight = a.Integer("in-flight", DefaultInFlight, 1, 1_000_000);
        // Kestrel (tuned) takes 1,000 streams per connection; more calls than that share more
        // connections. At least two: the server then works on one connection's batch while the
        // other's arrives (200 calls: 159k req/s on two connections against 121k on one, like h2load's 2).
        // Never more connections than calls: a connection without a call measures nothing.
        var connections = Math.Min(inFlight,
            a.Integer("connections", Math.Max(2, (inFlight + StreamsPerConnection - 1) / StreamsPerConnection), 1, 10_000));

        var warmupText = a.Text("warmup", "0");
        var autoWarmup = warmupText == "auto";
        var warmup = autoWarmup ? TimeSpan.Zero : TimeSpan.FromSeconds(CommandArguments.ParseNumber("--warmup", warmupText, 0, 3600));

        var algorithmText = a.Text("algorithm", "all");
        SignatureAlgorithm[] algorithms = algorithmText == "all"
            ? [SignatureAlgorithm.RsaPkcs1Sha256, SignatureAlgorithm.RsaPssSha256, SignatureAlgorithm.EcdsaP256Sha256, SignatureAlgorithm.EcdsaP384Sha384]
            : algorithmText.Split(',').Select(ParseAlgorithm).ToArray();

        var engine = a.Text("engine", "lean") switch
        {
            "lean" => EngineKind.Lean,
            "grpcnet" => EngineKind.GrpcNet,
            var other => throw new UsageException($"--engine must be lean or grpcnet, not '{other}'"),
        };

        var depth = a.Integer("stream-depth", 1, 1, 10_000);
        if (depth > 1 && (workload != Workload.Stream || engine != EngineKind.Lean))
            throw new UsageException("--stream-depth pipelines grpc-stream calls and needs the lean engine");

        return new(
            address, inFlight, connections,
            a.Integer("payload", 100, 0, 64 << 20),
            workload, service,
            TimeSpan.FromSeconds(a.Number("duration", 5, 0.001, 86_400)),
            a.Has("requests") ? a.LongInteger("requests", 0, 1, 1_000_000_000_000) : null,
            a.Number("rate", 0, 0, 1e9),
            a.Text("samples"),
            TimeSpan.FromSeconds(a.Number("timeout", 30, 0.001, 86_400)),
            warmup, autoWarmup,
            TimeSpan.FromSeconds(a.Number("warmup-cap", 30, 1, 3600)),
            algorithms, engine, depth, a.Has("connections"));
    }

    private static ServerAddress ParseAddress(CommandArguments a)
    {
        var chosen = new[] { "unix", "vsock" }.Where(a.Has).ToList();
        if (a.Has("host") || a.Has("port")) chosen.Add("host/port");
        if (chosen.Count > 1) throw new UsageException($"choose one transport, not {string.Join(" and ", chosen)}");
        if (a.Text("unix") is { } path) return new ServerAddress.Unix(path.Length > 0 ? path : throw new UsageException("--unix needs a path"));
        if (a.Text("vsock") is { } vsock) return ServerAddress.ParseVsock(vsock);
        if (a.Has("port")) return new ServerAddress.Tcp(a.Text("host", "127.0.0.1"), a.Integer("port", 0, 1, 65535));
        if (a.Has("host")) throw new UsageException("--port is required with --host");

        // SERVER_ADDR alone (host:port, unix:PATH, vsock://CID:PORT), or with TRANSPORT naming how to read it.
        var addr = a.Variable("SERVER_ADDR")
            ?? throw new UsageException("no server given: --port PORT, --unix PATH, --vsock CID:PORT or SERVER_ADDR");
        return a.Variable("TRANSPORT") switch
        {
            null => ServerAddress.Parse(addr),
            "tcp" => ServerAddress.Parse(addr) is ServerAddress.Tcp t ? t : throw new UsageException($"TRANSPORT=tcp but SERVER_ADDR is '{addr}'"),
            "unix" => addr.StartsWith("unix:") ? ServerAddress.Parse(addr) : new ServerAddress.Unix(addr),
            "vsock" => addr.StartsWith("vsock://") ? ServerAddress.Parse(addr) : ServerAddress.ParseVsock(addr),
            var other => throw new UsageException($"TRANSPORT must be tcp, unix or vsock, not '{other}'"),
        };
    }

    public static SignatureAlgorithm ParseAlgorithm(string text) => text.Trim().ToLowerInvariant() switch
    {
        "rsa-pkcs1-sha256" or "rsa_pkcs1_sha256" => SignatureAlgorithm.RsaPkcs1Sha256,
        "rsa-pss-sha256" or "rsa_pss_sha256" => SignatureAlgorithm.RsaPssSha256,
        "ecdsa-p256-sha256" or "ecdsa_p256_sha256" => SignatureAlgorithm.EcdsaP256Sha256,
        "ecdsa-p384-sha384" or "ecdsa_p384_sha384" => SignatureAlgorithm.EcdsaP384Sha384,
        _ => throw new UsageException(
            $"unknown algorithm '{text}': use all, rsa-pkcs1-sha256, rsa-pss-sha256, ecdsa-p256-sha256 or ecdsa-p384-sha384"),
    };

    public string Describe() => Address switch
    {
        ServerAddress.Tcp t => $"tcp {t.Host}:{t.Port}",
        ServerAddress.Unix u => $"unix {u.Path}",
        ServerAddress.Vsock v => $"vsock {v.Cid}:{v.Port}",
        _ => Address.ToString(),
    };
}
