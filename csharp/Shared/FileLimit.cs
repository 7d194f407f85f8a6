using System.Runtime.InteropServices;

namespace Bench.CommandLine;

/// <summary>The process's open-file limit (RLIMIT_NOFILE): read it, or raise the soft one toward the hard one.</summary>
public static class FileLimit
{
    private const int RlimitNofile = 7;

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Max;
    }

    [DllImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static extern int GetRLimit(int resource, out RLimit limit);

    [DllImport("libc", EntryPoint = "setrlimit", SetLastError = true)]
    private static extern int SetRLimit(int resource, ref RLimit limit);

    /// <summary>The soft limit in force; null where it cannot be read.</summary>
    public static ulong? Soft() => OperatingSystem.IsLinux() && GetRLimit(RlimitNofile, out var limit) == 0 ? limit.Current : null;

    /// <summary>Raises the soft limit to the hard one when it is below <paramref name="wanted"/>, as the contract asks of every client.</summary>
    public static void RaiseTo(int wanted, string program)
    {
        if (!OperatingSystem.IsLinux() || GetRLimit(RlimitNofile, out var limit) != 0 || limit.Current >= (ulong)wanted) return;
        limit.Current = limit.Max;
        if (SetRLimit(RlimitNofile, ref limit) != 0)
            Console.Error.WriteLine($"{program}: could not raise the open-file limit to {limit.Max}");
    }
}
