using System.Runtime.InteropServices;

namespace Bench.Harness.Machine;

/// <summary>The kernel limits a 10,000-connection run meets, checked before it starts rather than hoped for.</summary>
public static partial class Limits
{
    private const int RlimitNofile = 7;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit { public ulong Current, Max; }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrlimit(int resource, out RLimit limit);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setrlimit(int resource, in RLimit limit);

    public static (ulong Soft, ulong Hard) FileDescriptors()
    {
        getrlimit(RlimitNofile, out var l);
        return (l.Current, l.Max);
    }

    /// <summary>
    /// Makes sure the children the harness starts (which inherit its limits) may open
    /// <paramref name="needed"/> descriptors: raises the soft limit up to the hard one, or
    /// returns a message naming the limit and how to raise it.
    /// </summary>
    public static string? EnsureFileDescriptors(int needed)
    {
        var (soft, hard) = FileDescriptors();
        if ((ulong)needed <= soft) return null;
        if ((ulong)needed > hard)
            return $"{needed} file descriptors are needed but the hard limit (ulimit -Hn) is {hard}; " +
                   "raise it in /etc/security/limits.conf or with 'ulimit -Hn' as root, or use fewer connections";
        var raised = new RLimit { Current = hard, Max = hard };
        return setrlimit(RlimitNofile, raised) == 0 ? null
            : $"could not raise the soft file-descriptor limit from {soft} to {hard} (errno {Marshal.GetLastPInvokeError()})";
    }

    public static string ReadSysctl(string path) => File.Exists(path) ? File.ReadAllText(path).Trim().Replace('\t', ' ') : "n/a";

    public static int SoMaxConn => int.TryParse(ReadSysctl("/proc/sys/net/core/somaxconn"), out var v) ? v : 4096;

    /// <summary>How many ephemeral ports a client may use at once (net.ipv4.ip_local_port_range).</summary>
    public static int EphemeralPorts
    {
        get
        {
            var parts = ReadSysctl("/proc/sys/net/ipv4/ip_local_port_range").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return parts.Length == 2 && int.TryParse(parts[0], out var lo) && int.TryParse(parts[1], out var hi) ? hi - lo + 1 : 28232;
        }
    }
}
