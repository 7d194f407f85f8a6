using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Bench.Harness.Machine;

/// <summary>
/// How long one cache line takes to go from one core to another and back: two threads pinned to
/// the two cores hand a counter to each other. On a VM it says where the hypervisor has put the
/// two vCPUs just now (sibling hyperthreads, two cores of one socket, further apart), which the
/// guest cannot see or choose and steal time does not show; whatever crosses between the cores,
/// a shared-memory ring most of all, pays that distance.
/// </summary>
public static partial class CoreLink
{
    /// <summary>
    /// The median round trip in ns over <paramref name="budget"/> (the median of chunks of 256, so a
    /// preempted chunk does not count); null when the cores are one, either cannot be pinned to,
    /// or the partner did not run within a second.
    /// </summary>
    public static double? RoundTripNs(int a, int b, TimeSpan budget)
    {
        if (a == b) return null;
        var probe = new Probe((long)(budget.TotalSeconds * Stopwatch.Frequency));
        var pong = new Thread(() => { if (Pin(b)) probe.Pong(); else probe.Failed = true; }) { IsBackground = true };
        var ping = new Thread(() =>
        {
            try { if (Pin(a)) probe.Ping(); else probe.Failed = true; }
            finally { Volatile.Write(ref probe.Stop, 1); }
        }) { IsBackground = true };
        pong.Start();
        ping.Start();
        ping.Join();
        pong.Join();
        if (probe.Failed || probe.Chunks.Count == 0) return null;
        probe.Chunks.Sort();
        return probe.Chunks[probe.Chunks.Count / 2] * 1e9 / Stopwatch.Frequency / Probe.Chunk;
    }

    private sealed class Probe(long budget)
    {
        /// <summary>How long the partner's thread may take to start running on its core.</summary>
        private static readonly long StartLimit = Stopwatch.Frequency;

        public const int Chunk = 256;
        private const long Ready = -1;
        // The counter alone on its cache line: slot 8 of 24 longs is 64 bytes past anything else.
        private const int Slot = 8;
        private readonly long[] line = new long[24];
        public int Stop;
        public volatile bool Failed;
        public readonly List<long> Chunks = [];

        // Fully optimized from the first call: the probe runs for 20 ms, too short for tiered
        // compilation to replace slow first-tier code that would measure itself, not the cores.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Pong()
        {
            Volatile.Write(ref line[Slot], Ready);
            for (var n = 0; ; n++)
                if (Volatile.Read(ref line[Slot]) is var v && v > 0 && (v & 1) == 1) Volatile.Write(ref line[Slot], v + 1);
                else if ((n & 1023) == 0 && Volatile.Read(ref Stop) != 0) return;
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Ping()
        {
            // The clock starts once the partner runs on its core, not while its thread starts.
            var late = Stopwatch.GetTimestamp() + StartLimit;
            while (Volatile.Read(ref line[Slot]) != Ready)
                if (Failed || Stopwatch.GetTimestamp() > late) return;
            var deadline = Stopwatch.GetTimestamp() + budget;
            for (var next = 1L; ;)
            {
                var start = Stopwatch.GetTimestamp();
                for (var i = 0; i < Chunk; i++, next += 2)
                {
                    Volatile.Write(ref line[Slot], next);
                    // A partner descheduled by the hypervisor must not keep this waiting past the budget.
                    for (var spins = 0; Volatile.Read(ref line[Slot]) != next + 1; spins++)
                        if ((spins & 1023) == 1023 && Stopwatch.GetTimestamp() > deadline) return;
                }
                var end = Stopwatch.GetTimestamp();
                Chunks.Add(end - start);
                if (end > deadline) return;
            }
        }
    }

    /// <summary>Pins the calling thread to one CPU (pid 0 is the calling thread for sched_setaffinity).</summary>
    private static unsafe bool Pin(int cpu)
    {
        if (cpu < 0 || cpu >= 1024) return false;
        var mask = stackalloc ulong[16];
        mask[cpu / 64] = 1UL << (cpu % 64);
        return sched_setaffinity(0, 16 * sizeof(ulong), mask) == 0;
    }

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int sched_setaffinity(int pid, nint size, ulong* mask);
}
