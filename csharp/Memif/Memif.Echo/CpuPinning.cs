using System.Runtime.InteropServices;
using Bench.CommandLine;

namespace Memif.Echo;

internal static unsafe partial class CpuPinning
{
    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_setaffinity(int pid, nuint size, ulong* mask);

    /// <summary>Pins the calling thread (the data path) to one CPU, as the config's "core" asks.</summary>
    public static void PinCurrentThread(int core)
    {
        if (core is < 0 or > 63) throw new UsageException($"core must be 0..63, got {core}");
        ulong mask = 1UL << core;
        if (sched_setaffinity(0, sizeof(ulong), &mask) != 0)
            Console.Error.WriteLine($"memif: cannot pin to cpu {core} (errno {Marshal.GetLastPInvokeError()}); running unpinned");
    }
}
