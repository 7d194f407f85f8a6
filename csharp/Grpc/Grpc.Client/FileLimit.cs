using System.Runtime.InteropServices;

namespace GrpcBench.Client;

/// <summary>Raises the soft RLIMIT_NOFILE toward the hard limit, as the contract asks of every client.</summary>
static class FileLimit
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

    public static void RaiseTo(int wanted)
    {
        if (!OperatingSystem.IsLinux() || GetRLimit(RlimitNofile, out var limit) != 0 || limit.Current >= (ulong)wanted) return;
        limit.Current = limit.Max;
        if (SetRLimit(RlimitNofile, ref limit) != 0)
            Console.Error.WriteLine($"csharp-grpc-client: could not raise the open-file limit to {limit.Max}");
    }
}
