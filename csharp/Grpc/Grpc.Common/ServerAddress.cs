using Bench.CommandLine;

namespace GrpcBench;

/// <summary>A server address on one of the three transports (where a server listens, or a client connects).</summary>
public abstract record ServerAddress
{
    public sealed record Tcp(string Host, int Port) : ServerAddress;
    public sealed record Unix(string Path) : ServerAddress;
    public sealed record Vsock(uint Cid, uint Port) : ServerAddress;

    /// <summary>
    /// Parses SERVER_ADDR: `host:port`, `tcp://host:port`, `unix:PATH`, `unix://PATH` or
    /// `vsock://CID:PORT` (the forms grpc tools use).
    /// </summary>
    public static ServerAddress Parse(string text)
    {
        if (text.StartsWith("unix://")) return new Unix(NonEmpty(text["unix://".Length..], text));
        if (text.StartsWith("unix:")) return new Unix(NonEmpty(text["unix:".Length..], text));
        if (text.StartsWith("vsock://")) return ParseVsock(text["vsock://".Length..]);
        if (text.StartsWith("tcp://")) text = text["tcp://".Length..];
        var colon = text.LastIndexOf(':');
        if (colon <= 0) throw new UsageException($"address '{text}' must be host:port, unix:PATH or vsock://CID:PORT");
        var host = text[..colon].Trim('[', ']');
        return new Tcp(host, CommandArguments.ParseInteger($"the port in '{text}'", text[(colon + 1)..], 0, 65535));
    }

    /// <summary>`CID:PORT`; CID may be `any` (VMADDR_CID_ANY, every local CID).</summary>
    public static Vsock ParseVsock(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 2) throw new UsageException($"vsock address '{text}' must be CID:PORT");
        uint cid = parts[0] is "any" or "-1" ? uint.MaxValue
            : uint.TryParse(parts[0], out var c) ? c
            : throw new UsageException($"vsock CID '{parts[0]}' must be a number or 'any'");
        if (!uint.TryParse(parts[1], out var port)) throw new UsageException($"vsock port '{parts[1]}' must be a number");
        return new Vsock(cid, port);
    }

    private static string NonEmpty(string path, string text) =>
        path.Length > 0 ? path : throw new UsageException($"address '{text}' has an empty path");
}
