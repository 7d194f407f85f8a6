using System.Runtime.InteropServices;

namespace Bench.CommandLine;

/// <summary>
/// A contract client's measured window (docs/contract.md), shared by the C# clients. <see cref="Start"/> prints <c>MEASURING</c>, where the harness takes its first
/// readings of the server's CPU and the cores' busy time, so the client's own start-up, JIT, warm-up
/// and connects stay out of every CPU figure; RESULT reports the client's CPU between Start and Stop.
/// </summary>
public sealed class MeasuredWindow
{
    private CpuTime _start, _stop;

    public void Start()
    {
        Console.Out.WriteLine("MEASURING");
        Console.Out.Flush();
        _start = CpuTime.Now();
    }

    public void Stop() => _stop = CpuTime.Now();

    public CpuTime Cpu => new(_stop.UserUs - _start.UserUs, _stop.SysUs - _start.SysUs);

    /// <summary>The RESULT line's keys for it: `cpu_user_us=.. cpu_sys_us=..`.</summary>
    public string ResultKeys => $"cpu_user_us={Cpu.UserUs} cpu_sys_us={Cpu.SysUs}";
}

/// <summary>CPU time this process has used, all threads, in microseconds.</summary>
public readonly partial record struct CpuTime(long UserUs, long SysUs)
{
    private const int RUSAGE_SELF = 0;

    /// <summary>getrusage(RUSAGE_SELF): to the microsecond, where Process.UserProcessorTime reads clock ticks from /proc.</summary>
    public static CpuTime Now()
    {
        if (getrusage(RUSAGE_SELF, out var usage) != 0)
            throw new InvalidOperationException($"getrusage failed: errno {Marshal.GetLastPInvokeError()}");
        return new(usage.UserTime.Microseconds, usage.SystemTime.Microseconds);
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int getrusage(int who, out RUsage usage);

    /// <summary>struct rusage on 64-bit Linux: two timevals, then fourteen longs not read here (144 bytes).</summary>
    [StructLayout(LayoutKind.Sequential, Size = 144)]
    private struct RUsage
    {
        public TimeVal UserTime;
        public TimeVal SystemTime;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeVal
    {
        public long Seconds;
        public long MicrosecondsPart;
        public readonly long Microseconds => Seconds * 1_000_000 + MicrosecondsPart;
    }
}
