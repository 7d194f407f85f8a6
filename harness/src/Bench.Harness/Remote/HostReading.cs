using System.Globalization;
using Bench.Harness.Machine;

namespace Bench.Harness.Remote;

/// <summary>
/// One instant on a host, read over its multiplexed ssh connection: a process group's CPU time
/// and its leader's peak memory, every core's busy time, and the host's TCP counters (its own
/// network namespace's on the test bed), with the kernel's input-backlog drops and its boot id
/// (test-bed hosts share one kernel, so its drops are counted once), and its sockets in TIME_WAIT.
/// </summary>
public sealed record HostReading(ProcessUsage? Group, IReadOnlyDictionary<int, CpuTime> Cpus, TcpCounters Counters, string BootId = "",
    int TimeWait = 0)
{
    // Fields after "pid (comm) ": 3 pgrp, 12 utime, 13 stime, 14 cutime, 15 cstime (awk's numbering). cat goes on past processes that ended.
    private const string Script = """
        cat /proc/stat; echo @@
        cat /proc/net/netstat; echo @@
        cat /proc/net/snmp; echo @@
        cat /proc/net/softnet_stat; echo @@
        cat /proc/sys/kernel/random/boot_id; echo @@
        cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$4 == "06" { n++ } END { print n + 0 }'; echo @@
        if [ "$1" -gt 0 ]; then
          cat /proc/[0-9]*/stat 2>/dev/null | awk -v g="$1" '{ sub(/^.*\) /, ""); if ($3 == g) { u += $12 + $14; s += $13 + $15 } } END { print u + 0, s + 0 }'
          grep VmHWM "/proc/$1/status" 2>/dev/null | awk '{ print $2 }'
        fi
        """;

    public static async Task<HostReading?> ReadAsync(Ssh ssh, RemoteHost host, int group, CancellationToken cancel)
    {
        var (exit, stdout, _) = await ssh.ShellAsync(host, Script, [group.ToString(CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(20), cancel);
        if (exit != 0) return null;
        var parts = stdout.Split("@@\n");
        if (parts.Length < 7) return null;
        ProcessUsage? usage = null;
        var tail = parts[6].Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (tail.Length >= 1 && tail[0].Split(' ') is [var u, var s])
            usage = new ProcessUsage(long.Parse(u, CultureInfo.InvariantCulture) * 10.0, long.Parse(s, CultureInfo.InvariantCulture) * 10.0,
                tail.Length > 1 && long.TryParse(tail[1], CultureInfo.InvariantCulture, out var hwm) ? hwm : 0);
        return new HostReading(usage, ProcFs.ParseCpuTimes(parts[0].Split('\n')), TcpCounters.Parse(parts[1], parts[2], parts[3]), parts[4].Trim(),
            int.TryParse(parts[5].Trim(), CultureInfo.InvariantCulture, out var tw) ? tw : 0);
    }
}
