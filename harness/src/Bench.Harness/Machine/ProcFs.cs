using System.Globalization;

namespace Bench.Harness.Machine;

/// <summary>What a process tree holds at one instant: resident memory, open descriptors, threads.</summary>
public readonly record struct Footprint(long RssKb, long Fds, long Threads);

/// <summary>CPU time and peak memory of a process and everything it started, read from /proc.</summary>
public readonly record struct ProcessUsage(double UserMs, double SystemMs, long PeakRssKb)
{
    public double CpuMs => UserMs + SystemMs;

    /// <summary>GNU time (Debian's `time`), not the shell keyword.</summary>
    public const string TimeProgram = "/usr/bin/time";

    /// <summary>GNU time, writing "user-seconds system-seconds max-rss-KiB" to a file when the command ends.</summary>
    public static IReadOnlyList<string> TimeCommand(string outputPath) => [TimeProgram, "-o", outputPath, "-f", "%U %S %M"];

    /// <summary>The usage GNU time wrote; null when the command was killed before it could.</summary>
    public static ProcessUsage? ReadTimeOutput(string path)
    {
        if (!File.Exists(path)) return null;
        // A child killed by a signal makes time write "Command terminated by signal N" first.
        var last = File.ReadLines(path).LastOrDefault(l => l.Length > 0)?.Split(' ');
        return last is { Length: 3 }
               && double.TryParse(last[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var user)
               && double.TryParse(last[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var sys)
               && long.TryParse(last[2], out var rss)
            ? new ProcessUsage(user * 1000, sys * 1000, rss) : null;
    }
}

public static class ProcFs
{
    // USER_HZ is 100 on every Linux ABI the harness runs on; /proc reports CPU times in it.
    private const double MsPerTick = 10.0;

    /// <summary>
    /// Sums the process and its live descendants (a server may fork workers). Null once the
    /// process is gone. Peak RSS is the largest VmHWM in the tree: the processes' peaks need not coincide.
    /// </summary>
    public static ProcessUsage? ReadTree(int pid)
    {
        var own = Read(pid);
        if (own is null) return null;
        var (user, sys, peak) = (own.Value.UserMs, own.Value.SystemMs, own.Value.PeakRssKb);
        foreach (var child in Descendants(pid))
            if (Read(child) is { } u)
                (user, sys, peak) = (user + u.UserMs, sys + u.SystemMs, Math.Max(peak, u.PeakRssKb));
        return new ProcessUsage(user, sys, peak);
    }

    public static ProcessUsage? Read(int pid)
    {
        try
        {
            var fields = StatFields(File.ReadAllText($"/proc/{pid}/stat"));
            // Fields after the command name, 0-based from 'state': utime is 11, stime 12, cutime 13, cstime 14.
            // Reaped children's times (cutime, cstime) count too: a wrapper's exec'd workers land there.
            var user = (long.Parse(fields[11]) + long.Parse(fields[13])) * MsPerTick;
            var sys = (long.Parse(fields[12]) + long.Parse(fields[14])) * MsPerTick;
            return new ProcessUsage(user, sys, ReadStatusKb(pid, "VmHWM:"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return null; }
    }

    public static IEnumerable<int> Descendants(int root)
    {
        var table = ProcessTable();
        var found = new HashSet<int> { root };
        bool grew;
        do
        {
            grew = false;
            foreach (var (pid, p) in table)
                if (found.Contains(p.Parent) && found.Add(pid)) grew = true;
        } while (grew);
        found.Remove(root);
        return found;
    }

    /// <summary>
    /// What a process and its live descendants hold now: resident memory (VmRSS, KiB), open
    /// descriptors and threads. Null once the process is gone.
    /// </summary>
    public static Footprint? ReadFootprint(int pid)
    {
        if (Stat(pid) is null) return null;
        long rss = 0, fds = 0, threads = 0;
        foreach (var p in new[] { pid }.Concat(Descendants(pid)))
        {
            try
            {
                rss += ReadStatusKb(p, "VmRSS:");
                threads += ReadStatusKb(p, "Threads:");
                fds += Directory.EnumerateFileSystemEntries($"/proc/{p}/fd").LongCount();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // it exited as we read it
        }
        return new Footprint(rss, fds, threads);
    }

    /// <summary>
    /// Context switches of a process tree so far, voluntary (it blocked: a wait for I/O or a lock)
    /// and involuntary (preempted), summed over every live thread: /proc/PID/status counts its
    /// leader alone. Null once the process is gone.
    /// </summary>
    public static long? ContextSwitches(int pid)
    {
        if (Stat(pid) is null) return null;
        long switches = 0;
        foreach (var p in new[] { pid }.Concat(Descendants(pid)))
        {
            try
            {
                foreach (var task in Directory.EnumerateDirectories($"/proc/{p}/task"))
                    foreach (var line in File.ReadLines(Path.Combine(task, "status")))
                        if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal) || line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal))
                            switches += long.Parse(line[(line.IndexOf(':') + 1)..].Trim(), CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // a thread or process exited as we read it
        }
        return switches;
    }

    /// <summary>What /proc/PID/stat says of a process: its state, parent, group, session and start time (in clock ticks since boot).</summary>
    public readonly record struct ProcEntry(char State, int Parent, int Group, int Session, long StartTime);

    /// <summary>Every process now, by pid.</summary>
    public static Dictionary<int, ProcEntry> ProcessTable()
    {
        var table = new Dictionary<int, ProcEntry>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(dir), out var pid) && Stat(pid) is { } entry)
                table[pid] = entry;
        return table;
    }

    /// <summary>One process's entry; null once it is gone.</summary>
    public static ProcEntry? Stat(int pid)
    {
        try
        {
            // After 'state' (0): ppid 1, pgrp 2, session 3, ..., starttime 19.
            var f = StatFields(File.ReadAllText($"/proc/{pid}/stat"));
            return new ProcEntry(f[0][0], int.Parse(f[1]), int.Parse(f[2]), int.Parse(f[3]), long.Parse(f[19]));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>The fields after "pid (comm)": comm may hold spaces and parentheses, so split after the last ')'.</summary>
    private static string[] StatFields(string stat) => stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

    /// <summary>A number from /proc/PID/status (kB for sizes, a count for Threads); 0 when the key is absent.</summary>
    private static long ReadStatusKb(int pid, string key)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line[key.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        return 0;
    }

    /// <summary>Busy, total and stolen jiffies per CPU from /proc/stat, to tell which core was saturated and whether the hypervisor took it.</summary>
    public static IReadOnlyDictionary<int, CpuTime> CpuTimes() => ParseCpuTimes(File.ReadLines("/proc/stat"));

    /// <summary>The same from the lines of a /proc/stat read elsewhere (another host's).</summary>
    public static IReadOnlyDictionary<int, CpuTime> ParseCpuTimes(IEnumerable<string> lines)
    {
        var result = new Dictionary<int, CpuTime>();
        foreach (var line in lines)
        {
            if (!line.StartsWith("cpu", StringComparison.Ordinal) || !char.IsAsciiDigit(line[3])) continue;
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var values = parts[1..].Select(long.Parse).ToArray();
            long idle = values[3] + values[4]; // idle + iowait
            long total = values.Take(8).Sum();  // guest time is already inside user
            result[int.Parse(parts[0][3..])] = new(total - idle, total, values.Length > 7 ? values[7] : 0);
        }
        return result;
    }

    /// <summary>The share of the time between two readings that <paramref name="cpu"/> was busy (stolen time counts as busy: the core was wanted).</summary>
    public static double BusyFraction(IReadOnlyDictionary<int, CpuTime> before, IReadOnlyDictionary<int, CpuTime> after, int cpu) =>
        Fraction(before, after, cpu, t => t.Busy);

    /// <summary>The share of the time between two readings that the hypervisor ran something else on <paramref name="cpu"/> while this machine wanted it.</summary>
    public static double StealFraction(IReadOnlyDictionary<int, CpuTime> before, IReadOnlyDictionary<int, CpuTime> after, int cpu) =>
        Fraction(before, after, cpu, t => t.Steal);

    private static double Fraction(IReadOnlyDictionary<int, CpuTime> before, IReadOnlyDictionary<int, CpuTime> after, int cpu, Func<CpuTime, long> part)
    {
        if (!before.TryGetValue(cpu, out var b) || !after.TryGetValue(cpu, out var a) || a.Total == b.Total) return 0;
        return (double)(part(a) - part(b)) / (a.Total - b.Total);
    }
}

/// <summary>One CPU's jiffies from /proc/stat: busy (steal included), all of them, and stolen by the hypervisor.</summary>
public readonly record struct CpuTime(long Busy, long Total, long Steal);
