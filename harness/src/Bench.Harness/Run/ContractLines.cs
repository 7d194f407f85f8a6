using System.Globalization;
using Bench.Harness.Machine;

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

    /// <summary>
    /// Host and port of a `READY tcp host:port` line; IPv6 hosts may be bracketed. A port no socket
    /// can connect to (0, or past 65535) is refused here, where the line can still be named.
    /// </summary>
    public (string Host, int Port) TcpEndpoint
    {
        get
        {
            var colon = Address.LastIndexOf(':');
            var host = colon > 0 ? Address[..colon] : "";
            if (host.Length > 2 && host[0] == '[' && host[^1] == ']') host = host[1..^1];
            if (host.Length == 0 || host.AsSpan().ContainsAny('[', ']') ||
                !int.TryParse(Address.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
                throw new FormatException($"ready line address '{Address}' is not host:port (a port from 1 to 65535)");
            return (host, port);
        }
    }
}

/// <summary>
/// A client's `MEASURING` line: its timed window starts now (connections open, its own warm-up
/// over). The harness reads the server's CPU time and the cores' busy time here and at the
/// RESULT line, so those figures cover the window only.
/// </summary>
public static class MeasuringLine
{
    public const string Text = "MEASURING";

    public static bool Matches(string line) => line == Text;
}

/// <summary>
/// A client's `RESULT ok=.. failed=.. wall_ns=.. bytes=.. conn_min=.. conn_max=.. cpu_user_us=.. cpu_sys_us=..`
/// line. A tool that cannot count per connection leaves conn_min and conn_max out (both, never
/// one); cpu_user_us and cpu_sys_us are the client's own CPU time over its timed window (both or
/// neither); an adapter in front of an independent tool adds that tool's own CPU and memory
/// (load_user_ms, load_sys_ms, load_peak_rss_kb), which the harness records instead of the adapter's.
/// </summary>
public sealed record ResultLine(long Ok, long Failed, long WallNs, long Bytes, long? ConnMin, long? ConnMax, ProcessUsage? LoadUsage = null)
{
    /// <summary>The client's CPU time over its timed window, when it reports it.</summary>
    public ProcessUsage? WindowUsage { get; init; }

    private static readonly string[] Required = ["ok", "failed", "wall_ns", "bytes"];

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
        if (Required.FirstOrDefault(k => !values.ContainsKey(k)) is { } missing)
            throw new FormatException($"RESULT line lacks '{missing}': '{line}'");
        long? Optional(string key) => values.TryGetValue(key, out var v) ? v : null;
        foreach (var (first, second) in new[] { ("conn_min", "conn_max"), ("cpu_user_us", "cpu_sys_us") })
            if (values.ContainsKey(first) != values.ContainsKey(second))
                throw new FormatException($"RESULT line has one of {first} and {second} without the other: '{line}'");
        var usage = Optional("load_user_ms") is { } user && Optional("load_sys_ms") is { } sys
            ? new ProcessUsage(user, sys, Optional("load_peak_rss_kb") ?? 0) : (ProcessUsage?)null;
        var window = Optional("cpu_user_us") is { } windowUser && Optional("cpu_sys_us") is { } windowSys
            ? new ProcessUsage(windowUser / 1000.0, windowSys / 1000.0, 0) : (ProcessUsage?)null;
        return new ResultLine(values["ok"], values["failed"], values["wall_ns"], values["bytes"], Optional("conn_min"), Optional("conn_max"), usage)
        {
            WindowUsage = window,
        };
    }
}
