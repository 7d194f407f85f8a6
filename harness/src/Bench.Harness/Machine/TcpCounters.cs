namespace Bench.Harness.Machine;

/// <summary>
/// The kernel's TCP counters that explain a slow burst: accept-queue overflows drop SYNs,
/// and each dropped SYN costs the client a 1 s (then 3 s) retransmit timer. Beside them the
/// packets dropped at the per-CPU input backlog (/proc/net/softnet_stat, bounded by
/// net.core.netdev_max_backlog): loopback and veth packets all pass through it, and a SYN,
/// SYN-ACK or ACK dropped there costs the same timer without any listen queue overflowing.
/// That one is the kernel's, not a network namespace's: every namespace reads the same.
/// </summary>
public sealed record TcpCounters(long ListenOverflows, long ListenDrops, long SynRetrans, long RetransSegs, long Timeouts, long BacklogDrops = 0)
{
    public static TcpCounters operator -(TcpCounters after, TcpCounters before) => new(
        after.ListenOverflows - before.ListenOverflows, after.ListenDrops - before.ListenDrops,
        after.SynRetrans - before.SynRetrans, after.RetransSegs - before.RetransSegs, after.Timeouts - before.Timeouts,
        after.BacklogDrops - before.BacklogDrops);

    public static TcpCounters operator +(TcpCounters a, TcpCounters b) => new(
        a.ListenOverflows + b.ListenOverflows, a.ListenDrops + b.ListenDrops, a.SynRetrans + b.SynRetrans,
        a.RetransSegs + b.RetransSegs, a.Timeouts + b.Timeouts, a.BacklogDrops + b.BacklogDrops);

    public static TcpCounters Read() => Parse(File.ReadAllText("/proc/net/netstat"), File.ReadAllText("/proc/net/snmp"),
        File.Exists("/proc/net/softnet_stat") ? File.ReadAllText("/proc/net/softnet_stat") : null);

    public static TcpCounters Parse(string netstat, string snmp, string? softnet = null)
    {
        var ext = Table(netstat, "TcpExt:");
        var tcp = Table(snmp, "Tcp:");
        return new(ext.GetValueOrDefault("ListenOverflows"), ext.GetValueOrDefault("ListenDrops"),
            ext.GetValueOrDefault("TCPSynRetrans"), tcp.GetValueOrDefault("RetransSegs"), ext.GetValueOrDefault("TCPTimeouts"),
            softnet is null ? 0 : BacklogDropped(softnet));
    }

    /// <summary>/proc/net/softnet_stat: a line per CPU of hex counters, the second the packets dropped because that CPU's backlog was full.</summary>
    public static long BacklogDropped(string softnet) =>
        softnet.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length > 1).Sum(f => long.TryParse(f[1], System.Globalization.NumberStyles.HexNumber, null, out var v) ? v : 0);

    /// <summary>/proc/net files come in pairs of lines: a header of names, then a line of values with the same prefix.</summary>
    internal static Dictionary<string, long> Table(string text, string prefix)
    {
        var lines = text.Split('\n').Where(l => l.StartsWith(prefix, StringComparison.Ordinal)).ToArray();
        var table = new Dictionary<string, long>();
        for (var i = 0; i + 1 < lines.Length; i += 2)
        {
            var names = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var values = lines[i + 1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            for (var j = 1; j < Math.Min(names.Length, values.Length); j++)
                if (long.TryParse(values[j], out var v)) table[names[j]] = v;
        }
        return table;
    }

    /// <summary>Sockets in TIME_WAIT (state 06) over IPv4 and IPv6: each holds an ephemeral port for 60 s.</summary>
    public static int CountTimeWait()
    {
        var count = 0;
        foreach (var file in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
            if (File.Exists(file))
                foreach (var line in File.ReadLines(file).Skip(1))
                {
                    var parts = line.Split(' ', 5, StringSplitOptions.RemoveEmptyEntries);
                    if (parts.Length > 3 && parts[3] == "06") count++;
                }
        return count;
    }
}
