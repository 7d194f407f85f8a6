using System.Globalization;

namespace Bench.Harness.Run;

/// <summary>A server's `READY transport address` line (docs/contract.md).</summary>
public sealed record ReadyLine(string Transport, string Address)
{
    public static bool Matches(string line) => line.StartsWith("READY ", StringComparison.Ordinal);

    public static ReadyLine Parse(string line)
    {
        var parts = line.Split(' ', 3, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 3 || parts[0] != "READY")
            throw new FormatException($"not a ready line: '{line}' (expected 'READY <transport> <address>')");
        return new ReadyLine(parts[1], parts[2]);
    }

    /// <summary>Host and port of a `READY tcp host:port` line; IPv6 hosts may be bracketed.</summary>
    public (string Host, int Port) TcpEndpoint
    {
        get
        {
            var colon = Address.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(Address[(colon + 1)..], out var port))
                throw new FormatException($"ready line address '{Address}' is not host:port");
            return (Address[..colon].Trim('[', ']'), port);
        }
    }
}

/// <summary>A client's `RESULT ok=.. failed=.. wall_ns=.. bytes=.. conn_min=.. conn_max=..` line.</summary>
public sealed record ResultLine(long Ok, long Failed, long WallNs, long Bytes, long ConnMin, long ConnMax)
{
    private static readonly string[] Keys = ["ok", "failed", "wall_ns", "bytes", "conn_min", "conn_max"];

    public static bool Matches(string line) => line.StartsWith("RESULT ", StringComparison.Ordinal);

    public static ResultLine Parse(string line)
    {
        if (!Matches(line)) throw new FormatException($"not a RESULT line: '{line}'");
        var values = new Dictionary<string, long>();
        foreach (var pair in line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1))
        {
            var kv = pair.Split('=', 2);
            if (kv.Length != 2 || !long.TryParse(kv[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
                throw new FormatException($"RESULT line field '{pair}' is not key=integer");
            values[kv[0]] = v;
        }
        if (Keys.FirstOrDefault(k => !values.ContainsKey(k)) is { } missing)
            throw new FormatException($"RESULT line lacks '{missing}': '{line}'");
        return new ResultLine(values["ok"], values["failed"], values["wall_ns"], values["bytes"], values["conn_min"], values["conn_max"]);
    }
}
