using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Bench.Harness.Run;

/// <summary>
/// Makes every process the harness starts die with the harness, even when the harness itself is
/// killed with SIGKILL and can run no code of its own.
///
/// Each child starts in a session and process group of its own (util-linux setsid, which does
/// not fork for a child that is not already a group leader, so the pid the harness holds stays
/// the program's; no wrapper stays in the program's process tree, whose CPU time and memory the
/// harness reads from /proc). The group's id is the child's pid; everything the child starts
/// inherits the group and the session unless it leaves them on purpose.
///
/// One reaper per harness, a small bash loop in a session of its own that ignores SIGINT,
/// SIGTERM and SIGHUP, is told "+ID" when a group starts and "-ID" once it is gone. Its stdin is a
/// pipe only the harness can write to: when the harness exits, however it exits, the kernel
/// closes that pipe, and at end of input the reaper kills what is left of every group still
/// registered.
///
/// What "the family" of a group is, both here and in the reaper: every process in the group or
/// the session, and every descendant of those by parent pid. The last part catches a child that
/// starts a program in a session of its own (the dpdk-testpmd wrappers do, with
/// start_new_session): its parent is ours, so it is ours. The family is frozen with SIGSTOP
/// before it is killed, so that nothing it forks while it is being enumerated, and nothing
/// orphaned (and so reparented away) by the killing, is missed.
///
/// Not covered: a descendant that leaves both the session and the tree (a daemon's double fork
/// followed by setsid), and processes the harness starts without <see cref="ManagedProcess"/>.
/// </summary>
public static partial class ProcessGroups
{
    /// <summary>The argv prefix that starts a program in a new session and process group.</summary>
    public static IReadOnlyList<string> NewSession { get; } = ["setsid"];

    private static readonly object Gate = new();
    private static readonly HashSet<int> Registered = new();
    private static Process? _reaper;
    private static StreamWriter? _toReaper;
    private static bool _reaperWarned;

    /// <summary>Registers a group (the id is the leader's pid) with the reaper, starting the reaper if need be.</summary>
    public static void Register(int id)
    {
        lock (Gate)
        {
            Registered.Add(id);
            Tell($"+{id}");
        }
    }

    /// <summary>Forgets a group whose members are all gone.</summary>
    private static void Unregister(int id)
    {
        lock (Gate)
            if (Registered.Remove(id)) Tell($"-{id}");
    }

    /// <summary>The groups registered now (for tests and diagnostics).</summary>
    public static IReadOnlyList<int> Live { get { lock (Gate) return Registered.ToList(); } }

    /// <summary>
    /// SIGKILL for the group and everything it started. <paramref name="leaderAlive"/>: the leader
    /// is still our child (not yet seen to exit), so its pid is its own and it may not have
    /// become a group leader yet (setsid runs a moment after the fork).
    /// </summary>
    public static void Kill(int id, bool leaderAlive) => KillFamilies([id], leaderAlive);

    /// <summary>Synchronously kills every registered group and everything it started: for stopping at once.</summary>
    public static void KillAll()
    {
        int[] ids;
        lock (Gate) ids = Registered.ToArray();
        if (ids.Length > 0) KillFamilies(ids, leadersAlive: true);
    }

    /// <summary>
    /// After the leader has exited: kills whatever of the group is left (workers, grandchildren)
    /// until none is, then unregisters the group. A group that will not go within
    /// <paramref name="patience"/> (a process in uninterruptible sleep, or one we may not signal)
    /// stays registered, so the reaper tries again when the harness exits.
    /// </summary>
    public static async Task ReleaseAsync(int id, TimeSpan patience)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            if (Family([id], leadersAlive: false, livingOnly: true).Count == 0)
            {
                Unregister(id);
                return;
            }
            KillFamilies([id], leadersAlive: false);
            if (waited.Elapsed > patience) return;
            await Task.Delay(10);
        }
    }

    private static void KillFamilies(IReadOnlyCollection<int> ids, bool leadersAlive)
    {
        // Freeze first, then kill: a process killed before its children are found would orphan
        // them, and an orphan that left the session is found by nothing but its parent.
        var doomed = new HashSet<int>();
        for (var round = 0; round < 5; round++)
        {
            var found = Family(ids, leadersAlive, livingOnly: false);
            found.ExceptWith(doomed);
            if (found.Count == 0) break;
            foreach (var pid in found) _ = kill(pid, SigStop);
            doomed.UnionWith(found);
        }
        foreach (var id in ids) _ = kill(-id, SigKill);
        foreach (var pid in doomed) _ = kill(pid, SigKill);
    }

    /// <summary>
    /// The processes of these groups: members of each group or session (and each leader itself,
    /// when it is still our child), and all their descendants. Never the harness itself.
    /// </summary>
    public static HashSet<int> Family(IReadOnlyCollection<int> ids, bool leadersAlive, bool livingOnly)
    {
        var self = Environment.ProcessId;
        var table = ProcessTable();
        var found = new HashSet<int>();
        foreach (var (pid, p) in table)
            if (ids.Contains(p.Group) || ids.Contains(p.Session) || (leadersAlive && ids.Contains(pid) && p.Parent == self))
                found.Add(pid);
        bool grew;
        do
        {
            grew = false;
            foreach (var (pid, p) in table)
                if (!found.Contains(pid) && found.Contains(p.Parent)) grew = found.Add(pid);
        } while (grew);
        found.Remove(self);
        if (livingOnly) found.RemoveWhere(pid => table[pid].State is 'Z' or 'X');
        return found;
    }

    public readonly record struct ProcEntry(char State, int Parent, int Group, int Session);

    /// <summary>State, parent, process group and session of every process, from /proc/PID/stat.</summary>
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
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses.
            var f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return new ProcEntry(f[0][0], int.Parse(f[1]), int.Parse(f[2]), int.Parse(f[3]));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>Sends one line to the reaper (under <see cref="Gate"/>), starting or restarting it when it is not there.</summary>
    private static void Tell(string line)
    {
        for (var attempt = 0; attempt < 2; attempt++)
        {
            if (_toReaper is null && !StartReaper()) return;
            try
            {
                _toReaper!.WriteLine(line);
                return;
            }
            catch (IOException)
            {
                // The reaper is gone (someone killed it): start another and tell it everything again.
                _toReaper = null;
            }
        }
    }

    private static bool StartReaper()
    {
        try
        {
            var start = new ProcessStartInfo(NewSession[0])
            {
                UseShellExecute = false,
                RedirectStandardInput = true,
                WorkingDirectory = "/",
            };
            // The script travels in the environment, so that `ps` shows one short line for the reaper.
            foreach (var arg in new[] { "bash", "-c", "eval \"$BENCH_REAPER_SCRIPT\"", "bench-reaper" }) start.ArgumentList.Add(arg);
            start.Environment["BENCH_REAPER_SCRIPT"] = ReaperScript;
            // Static fields keep the pipe's write end open for the harness's whole life: when they go, the reaper kills everything.
            _reaper = Process.Start(start)!;
            _toReaper = _reaper.StandardInput;
            _toReaper.AutoFlush = true;
            foreach (var id in Registered) _toReaper.WriteLine($"+{id}");
            return true;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException or InvalidOperationException)
        {
            _toReaper = null;
            if (!_reaperWarned)
                Console.Error.WriteLine($"bench: cannot start the process reaper ({e.Message}); processes may outlive a harness that is killed");
            _reaperWarned = true;
            return false;
        }
    }

    /// <summary>The reaper's pid, or null when there is none (for tests).</summary>
    public static int? ReaperPid
    {
        get { lock (Gate) return _reaper is { HasExited: false } r ? r.Id : null; }
    }

    /// <summary>
    /// The reaper: reads "+ID" and "-ID" lines until end of input, then freezes and kills the
    /// family of every group still registered (the same rule as <see cref="Family"/>, with the
    /// leader counted by pid alone: by then the harness is gone and its children are orphans).
    /// Bash builtins only, so it starts nothing.
    /// </summary>
    private const string ReaperScript = """
        trap '' INT TERM HUP
        declare -A live=() doomed=() parent=() group=() session=()
        while IFS= read -r line; do
          [[ $line =~ ^([-+])([0-9]+)$ ]] || continue
          if [[ ${BASH_REMATCH[1]} == + ]]; then live[${BASH_REMATCH[2]}]=1; else unset "live[${BASH_REMATCH[2]}]"; fi
        done
        (( ${#live[@]} )) || exit 0
        scan() {
          parent=() group=() session=()
          local f stat pid state pp pg sd rest
          for f in /proc/[0-9]*/stat; do
            stat=
            IFS= read -r -d '' stat 2>/dev/null < "$f"
            [[ -n $stat ]] || continue
            pid=${stat%% *}
            read -r state pp pg sd rest <<< "${stat##*) }"
            [[ $pid$pp$pg$sd =~ ^[0-9]+$ ]] || continue
            parent[$pid]=$pp group[$pid]=$pg session[$pid]=$sd
          done
        }
        family() {
          local pid grew=1 added=1
          for pid in "${!parent[@]}"; do
            [[ -z ${doomed[$pid]} ]] || continue
            if [[ -n ${live[$pid]} || -n ${live[${group[$pid]}]} || -n ${live[${session[$pid]}]} ]]; then doomed[$pid]=1; added=0; fi
          done
          while (( grew )); do
            grew=0
            for pid in "${!parent[@]}"; do
              if [[ -z ${doomed[$pid]} && -n ${doomed[${parent[$pid]}]} ]]; then doomed[$pid]=1; grew=1; added=0; fi
            done
          done
          unset "doomed[$$]"
          return $added
        }
        for round in 1 2 3 4 5; do
          scan
          family || break
          kill -STOP "${!doomed[@]}" 2>/dev/null
        done
        for id in "${!live[@]}"; do kill -KILL -- "-$id" 2>/dev/null; done
        (( ${#doomed[@]} )) && kill -KILL "${!doomed[@]}" 2>/dev/null
        exit 0
        """;

    private const int SigKill = 9;
    private const int SigStop = 19;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
