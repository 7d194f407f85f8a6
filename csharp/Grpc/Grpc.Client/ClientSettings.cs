using System.Globalization;
using GrpcBench.Protos;

namespace GrpcBench.Client;

public enum Workload { Unary, Stream, Crypto }

public enum Service { Echo, Crypto, Both }

public enum EngineKind { Lean, GrpcNet }

/// <summary>Everything the load client is told, from arguments first and the environment second.</summary>
public sealed record ClientSettings(
    ServerAddress Address,
    int Concurrency,
    int Channels,
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
    bool ChannelsGiven = false)
{
    public const string Usage =
        "usage: csharp-grpc-client [--host HOST] --port PORT | --unix PATH | --vsock CID:PORT\n" +
        "         [--connections N]        concurrent calls in flight (default 10000)\n" +
        "         [--channels N]           HTTP/2 connections (default: enough for the calls at the server's stream limit)\n" +
        "         [--payload BYTES] [--workload grpc-unary|grpc-stream|grpc-crypto] [--service echo|crypto|both]\n" +
        "         [--duration S] [--requests N] [--rate REQ_PER_S] [--samples PATH] [--timeout S]\n" +
        "         [--warmup S|auto] [--warmup-cap S] [--algorithm NAME[,NAME..]] [--engine lean|grpcnet]\n" +
        "         [--stream-depth D]       grpc-stream: D calls pipelined on each stream (default 1: ping-pong)\n" +
        "environment: SERVER_ADDR, TRANSPORT, CONNECTIONS, REQUESTS, RATE_LIMIT, SERVICE, DURATION";

    public static ClientSettings Parse(IReadOnlyList<string> args, Func<string, string?> env)
    {
        var f = new Flags(args,
            ["host", "port", "unix", "vsock", "connections", "channels", "payload", "workload", "service", "duration",
             "requests", "rate", "samples", "timeout", "warmup", "warmup-cap", "algorithm", "engine", "stream-depth"], []);

        var address = ParseAddress(f, env);
        var workload = (f.Optional("workload") ?? "grpc-unary") switch
        {
            "grpc-unary" => Workload.Unary,
            "grpc-stream" => Workload.Stream,
            "grpc-crypto" => Workload.Crypto,
            var other => throw new UsageException($"--workload must be grpc-unary, grpc-stream or grpc-crypto, not '{other}'"),
        };
        var serviceText = f.Optional("service") ?? env("SERVICE");
        var service = serviceText switch
        {
            null => workload == Workload.Crypto ? Service.Crypto : Service.Echo,
            "echo" => Service.Echo,
            "crypto" => Service.Crypto,
            "both" => Service.Both,
            _ => throw new UsageException($"--service / SERVICE must be echo, crypto or both, not '{serviceText}'"),
        };
        if (workload == Workload.Stream && service != Service.Echo)
            throw new UsageException("grpc-stream streams the echo service; --service must be echo");
        if (workload == Workload.Crypto && service == Service.Echo)
            throw new UsageException("grpc-crypto calls the crypto service; --service must be crypto or both");

        var concurrency = Integer(f, env, "connections", "CONNECTIONS", 10_000, 1, 1_000_000);
        // Kestrel (tuned) takes 1,000 streams per connection; more calls than that share more
        // connections. At least two: the server then works on one connection's batch while the
        // other's arrives (200 calls: 159k req/s on two connections against 121k on one, like h2load's 2).
        var channels = Integer(f, env, "channels", null, Math.Max(Math.Min(2, concurrency), (concurrency + 999) / 1000), 1, 10_000);
        if (channels > concurrency) channels = concurrency;

        var requestsText = f.Optional("requests") ?? env("REQUESTS");
        long? requests = requestsText is null ? null
            : long.TryParse(requestsText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var r) && r > 0 ? r
            : throw new UsageException($"--requests / REQUESTS must be a positive whole number, not '{requestsText}'");

        var warmupText = f.Optional("warmup") ?? "0";
        var autoWarmup = warmupText == "auto";
        var warmup = autoWarmup ? TimeSpan.Zero : TimeSpan.FromSeconds(Number(warmupText, "--warmup", 0, 3600));

        var algorithms = (f.Optional("algorithm") ?? "all") == "all"
            ? [SignatureAlgorithm.RsaPkcs1Sha256, SignatureAlgorithm.RsaPssSha256, SignatureAlgorithm.EcdsaP256Sha256, SignatureAlgorithm.EcdsaP384Sha384]
            : f.Optional("algorithm")!.Split(',').Select(ParseAlgorithm).ToArray();

        var engine = (f.Optional("engine") ?? "lean") switch
        {
            "lean" => EngineKind.Lean,
            "grpcnet" => EngineKind.GrpcNet,
            var other => throw new UsageException($"--engine must be lean or grpcnet, not '{other}'"),
        };

        var depth = f.Integer("stream-depth", 1, 1, 10_000);
        if (depth > 1 && (workload != Workload.Stream || engine != EngineKind.Lean))
            throw new UsageException("--stream-depth pipelines grpc-stream calls and needs the lean engine");

        return new(
            address, concurrency, channels,
            Flags.ParseInteger("--payload", f.Optional("payload") ?? "100", 0, 64 << 20),
            workload, service,
            TimeSpan.FromSeconds(Number(f.Optional("duration") ?? env("DURATION") ?? "5", "--duration / DURATION", 0.001, 86_400)),
            requests,
            Number(f.Optional("rate") ?? env("RATE_LIMIT") ?? "0", "--rate / RATE_LIMIT", 0, 1e9),
            f.Optional("samples"),
            TimeSpan.FromSeconds(Number(f.Optional("timeout") ?? "30", "--timeout", 0.001, 86_400)),
            warmup, autoWarmup,
            TimeSpan.FromSeconds(Number(f.Optional("warmup-cap") ?? "30", "--warmup-cap", 1, 3600)),
            algorithms, engine, depth, f.Has("channels"));
    }

    private static ServerAddress ParseAddress(Flags f, Func<string, string?> env)
    {
        var chosen = new[] { "unix", "vsock" }.Where(f.Has).ToList();
        if (f.Has("host") || f.Has("port")) chosen.Add("host/port");
        if (chosen.Count > 1) throw new UsageException($"choose one transport, not {string.Join(" and ", chosen)}");
        if (f.Optional("unix") is { } path) return new ServerAddress.Unix(path.Length > 0 ? path : throw new UsageException("--unix needs a path"));
        if (f.Optional("vsock") is { } vsock) return ServerAddress.ParseVsock(vsock);
        if (f.Has("port")) return new ServerAddress.Tcp(f.Optional("host") ?? "127.0.0.1", f.Integer("port", 0, 1, 65535));
        if (f.Has("host")) throw new UsageException("--port is required with --host");

        // SERVER_ADDR alone (host:port, unix:PATH, vsock://CID:PORT), or with TRANSPORT naming how to read it.
        var addr = env("SERVER_ADDR");
        if (string.IsNullOrEmpty(addr)) throw new UsageException("no server given: --port PORT, --unix PATH, --vsock CID:PORT or SERVER_ADDR");
        return env("TRANSPORT") switch
        {
            null or "" => ServerAddress.Parse(addr),
            "tcp" => ServerAddress.Parse(addr) is ServerAddress.Tcp t ? t : throw new UsageException($"TRANSPORT=tcp but SERVER_ADDR is '{addr}'"),
            "unix" => addr.StartsWith("unix:") ? ServerAddress.Parse(addr) : new ServerAddress.Unix(addr),
            "vsock" => addr.StartsWith("vsock://") ? ServerAddress.Parse(addr) : ServerAddress.ParseVsock(addr),
            var other => throw new UsageException($"TRANSPORT must be tcp, unix or vsock, not '{other}'"),
        };
    }

    private static int Integer(Flags f, Func<string, string?> env, string name, string? envName, int fallback, int min, int max)
    {
        var text = f.Optional(name) ?? (envName is null ? null : env(envName));
        return text is null ? fallback : Flags.ParseInteger(envName is null ? "--" + name : $"--{name} / {envName}", text, min, max);
    }

    private static double Number(string text, string what, double min, double max) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
            ? v
            : throw new UsageException($"{what} must be a number from {min} to {max}, not '{text}'");

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
