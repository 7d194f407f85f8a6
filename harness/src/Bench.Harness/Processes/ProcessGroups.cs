using System.Diagnostics;
using System.Runtime.InteropServices;
using Bench.Harness.Machine;
using static Bench.Harness.Machine.ProcFs;

namespace Bench.Harness.Processes;

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
/// SIGTERM and SIGHUP, is told "+ID START" when a group starts and "-ID" once it is gone. Its
/// stdin is a pipe only the harness can write to: when the harness exits, however it exits, the
/// kernel closes that pipe, and at end of input the reaper kills what is left of every group
/// still registered.
///
/// The family of a group, both here and in the reaper: every process in the group or the
/// session, the leader itself, and every descendant of those by parent pid. The last part
/// catches a child that starts a program in a session of its own (the dpdk-testpmd wrappers do,
/// with start_new_session): its parent is ours, so it is ours. The family is frozen with SIGSTOP
/// before it is killed, so that nothing it forks while it is being enumerated, and nothing the
/// killing orphans (and so reparents away), is missed.
///
/// Pids are reused. The kernel never hands out a number that is still some process's pid, group
/// or session, so while anything of a group lives its id is ours; once a process holds the id as
/// its pid with a start time other than the leader's, the id was free when it was handed out
/// again, nothing of ours can be in that group or session, and the id is skipped.
///
/// Not covered: a descendant that leaves both the session and the tree (a daemon's double fork
/// and setsid), the moment between the fork of a child and its registration, and the toolchain
/// version probes (`--version`, a few milliseconds each), the one thing the harness starts
/// without <see cref="ManagedProcess"/>.
/// </summary>
public static partial class ProcessGroups
{
    /// <summary>The argv prefix that starts a program in a new session and process group.</summary>
    public static IReadOnlyList<string> NewSession { get; } = ["setsid"];

    private static readonly object Gate = new();
    private static readonly HashSet<Group> Registered = new();
    private static Process? _reaper;
    private static StreamWriter? _toReaper;
    private static bool _reaperWarned;

    /// <summary>
    /// A group the harness started: its id (the leader's pid) and the leader's start time, which
    /// tells the leader from a later process that was given the same pid.
    /// </summary>
    public readonly record struct Group(int Id, long LeaderStart);

    /// <summary>Registers a new child's group (its id is the child's pid) with the reaper, starting the reaper if need be.</summary>
    public static Group Register(int pid)
    {
        // 0 when the child is already gone: then any process with this pid is a later one.
        var group = new Group(pid, Stat(pid)?.StartTime ?? 0);
        lock (Gate)
        {
            Registered.Add(group);
            Tell($"+{group.Id} {group.LeaderStart}");
        }
        return group;
    }

    private static void Unregister(Group group)
    {
        lock (Gate)
            if (Registered.Remove(group)) Tell($"-{group.Id}");
    }

    /// <summary>The ids of the groups registered now.</summary>
    public static IReadOnlyList<int> Live { get { lock (Gate) return Registered.Select(g => g.Id).ToList(); } }

    /// <summary>
    /// The leader has exited by itself: a group with nothing left in it (zombies included) is
    /// unregistered at once; one with members left waits for <see cref="ReleaseAsync"/>.
    /// </summary>
    public static void LeaderExited(Group group)
    {
        if (Family([group], leadersAlive: false, livingOnly: false).Count == 0) Unregister(group);
    }

    /// <summary>
    /// SIGKILL for the group and everything it started. <paramref name="leaderAlive"/>: the leader
    /// has not been seen to exit, so it is still our child, and it may not have made itself a
    /// group leader yet (setsid runs a moment after the fork).
    /// </summary>
    public static void Kill(Group group, bool leaderAlive) => KillFamilies([group], leaderAlive);

    /// <summary>Synchronously kills every registered group and everything it started: for stopping at once.</summary>
    public static void KillAll()
    {
        Group[] groups;
        lock (Gate) groups = Registered.ToArray();
        if (groups.Length > 0) KillFamilies(groups, leadersAlive: true);
    }

    /// <summary>
    /// After the leader has exited: kills whatever of the group is left (workers, grandchildren)
    /// until none is, then unregisters the group. A group that will not go within
    /// <paramref name="patience"/> (a process in uninterruptible sleep, or one we may not signal)
    /// stays registered, so the reaper tries again when the harness exits.
    /// </summary>
    public static async Task ReleaseAsync(Group group, TimeSpan patience)
    {
        lock (Gate)
            if (!Registered.Contains(group)) return; // found empty already: an empty group cannot come back
        var waited = Stopwatch.StartNew();
        while (true)
        {
            if (Family([group], leadersAlive: false, livingOnly: true).Count == 0)
            {
                Unregister(group);
                return;
            }
            KillFamilies([group], leadersAlive: false);
            if (waited.Elapsed > patience) return;
            await Task.Delay(10);
        }
    }

    private static void KillFamilies(IReadOnlyCollection<Group> groups, bool leadersAlive)
    {
        // Freeze first, then kill: a process killed before its children are found would orphan
        // them, and an orphan that left the session is found by nothing but its parent.
        var doomed = new HashSet<int>();
        IReadOnlyCollection<int> ours = [];
        for (var round = 0; round < 5; round++)
        {
            var found = Family(groups, leadersAlive, livingOnly: false, out ours);
            found.ExceptWith(doomed);
            if (found.Count == 0) break;
            foreach (var pid in found) _ = kill(pid, SigStop);
            doomed.UnionWith(found);
        }
        foreach (var id in ours) _ = kill(-id, SigKill);
        foreach (var pid in doomed) _ = kill(pid, SigKill);
    }

    /// <summary>
    /// The processes of these groups (see the class summary): members of each group or session,
    /// each leader (when it is still our child) and all their descendants. Never the harness itself.
    /// </summary>
    public static HashSet<int> Family(IReadOnlyCollection<Group> groups, bool leadersAlive, bool livingOnly) =>
        Family(groups, leadersAlive, livingOnly, out _);

    private static HashSet<int> Family(IReadOnlyCollection<Group> groups, bool leadersAlive, bool livingOnly, out IReadOnlyCollection<int> ours)
    {
        var self = Environment.ProcessId;
        var table = ProcessTable();
        // An id held as a pid by a process that is not our leader was free when it was reused: skip it.
        var valid = groups.Where(g => !table.TryGetValue(g.Id, out var p) || p.StartTime == g.LeaderStart).Select(g => g.Id).ToHashSet();
        ours = valid;
        var found = new HashSet<int>();
        foreach (var (pid, p) in table)
            if (valid.Contains(p.Group) || valid.Contains(p.Session) || (leadersAlive && valid.Contains(pid) && p.Parent == self))
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
            var start = new ProcessStartInfo(NewSession[0]) { UseShellExecute = false, RedirectStandardInput = true, WorkingDirectory = "/" };
            // The script travels in the environment, so that `ps` shows one short line for the reaper.
            foreach (var arg in new[] { "bash", "-c", "eval \"$BENCH_REAPER_SCRIPT\"", "bench-reaper" }) start.ArgumentList.Add(arg);
            start.Environment["BENCH_REAPER_SCRIPT"] = ReaperScript;
            _reaper = Process.Start(start)!;
            // Static fields keep the pipe's write end open for the harness's whole life; .NET opens it
            // close-on-exec, so no other child holds it and its end of input means the harness is gone.
            _toReaper = _reaper.StandardInput;
            _toReaper.AutoFlush = true;
            foreach (var group in Registered) _toReaper.WriteLine($"+{group.Id} {group.LeaderStart}");
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

    /// <summary>
    /// The reaper: reads "+ID START" and "-ID" lines until end of input, then freezes and kills
    /// the family of every group still registered (the same rule as <see cref="Family"/>; the
    /// leader is told by its start time, as by then it is an orphan). Its output goes nowhere,
    /// so that it holds none of the harness's pipes open; bash builtins only, so it starts nothing.
    /// </summary>
    internal const string ReaperScript = """
        exec >/dev/null 2>&1
        trap '' INT TERM HUP
        declare -A live=() ours=() doomed=() parent=() group=() session=() start=()
        add='^[+]([0-9]+) ([0-9]+)$' remove='^-([0-9]+)$'
        while IFS= read -r line; do
          if [[ $line =~ $add ]]; then live[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
          elif [[ $line =~ $remove ]]; then unset "live[${BASH_REMATCH[1]}]"; fi
        done
        (( ${#live[@]} )) || exit 0
        scan() {
          parent=() group=() session=() start=()
          local f stat pid
          local -a field
          for f in /proc/[0-9]*/stat; do
            stat=
            IFS= read -r -d '' stat < "$f"
            [[ -n $stat ]] || continue
            pid=${stat%% *}
            read -r -a field <<< "${stat##*) }"
            [[ $pid${field[1]}${field[2]}${field[3]}${field[19]} =~ ^[0-9]+$ ]] || continue
            parent[$pid]=${field[1]} group[$pid]=${field[2]} session[$pid]=${field[3]} start[$pid]=${field[19]}
          done
        }
        family() {
          local id pid grew=1 added=1
          ours=()
          for id in "${!live[@]}"; do
            [[ -n ${parent[$id]} && ${start[$id]} != "${live[$id]}" ]] || ours[$id]=1
          done
          for pid in "${!parent[@]}"; do
            [[ -z ${doomed[$pid]} ]] || continue
            if [[ -n ${ours[$pid]} || -n ${ours[${group[$pid]}]} || -n ${ours[${session[$pid]}]} ]]; then doomed[$pid]=1; added=0; fi
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
          kill -STOP "${!doomed[@]}"
        done
        for id in "${!ours[@]}"; do kill -KILL -- "-$id"; done
        (( ${#doomed[@]} )) && kill -KILL "${!doomed[@]}"
        exit 0
        """;

    private const int SigKill = 9;
    private const int SigStop = 19;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);
}
