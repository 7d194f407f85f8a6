using Bench.Harness.Build;
using Bench.Harness.Catalog;
using Bench.Harness.LoadTools;
using Bench.Harness.Machine;

namespace Bench.Harness.Run;

/// <summary>What is wrong with a plan: problems that stop the whole suite, and experiments this machine cannot run.</summary>
public sealed record PlanProblems(IReadOnlyList<string> Fatal, IReadOnlyList<string> Skipped);

/// <summary>
/// Everything that would stop a suite or an experiment, found before anything is built: CPUs
/// that do not exist and programs that are not installed stop the suite; an experiment beyond a
/// limit of this machine is named at once and later recorded as skipped while the rest runs.
/// A suite says so in its first second, with every problem at once.
/// </summary>
public static class PlanValidator
{
    /// <summary>Programs every run needs: process groups, pinning, and the client's exact CPU time.</summary>
    private static readonly string[] HarnessPrograms = ["setsid", "taskset", ProcessUsage.TimeProgram];

    public static PlanProblems Check(IReadOnlyList<PlannedExperiment> plan, RunSettings settings, bool build)
    {
        var problems = new List<string>();
        foreach (var (what, cpus) in new[] { ("--server-cpus", settings.ServerCpus), ("--client-cpus", settings.ClientCpus) })
            if (CpuProblem(cpus) is { } p) problems.Add($"{what} {cpus}: {p}");
        foreach (var program in HarnessPrograms.Where(p => !Programs.Exists(p)))
            problems.Add($"'{program}' is not installed (scripts/setup.sh installs it)");

        var experiments = plan.Select(p => p.Experiment).ToList();
        var implementations = experiments.SelectMany(e => e.Implementations).Distinct().ToList();
        if (build)
            foreach (var (folder, spec) in implementations.Select(i => (i.Folder, i.Build)).Distinct())
                foreach (var program in Builder.StepsFor(spec, folder).Select(Builder.ProgramOf).Distinct().Where(p => !Programs.Exists(p)))
                    problems.Add($"'{program}' is not installed: the {spec.Toolchain} builds need it (scripts/setup.sh installs it)");
        foreach (var command in experiments.SelectMany(e => new[] { e.Server.ServerCommand, e.Load.Command }).OfType<IReadOnlyList<string>>().Distinct())
            // Built programs appear with the build; interpreters and tools must be there already.
            if ((!build || !command[0].Contains('/')) && !Programs.Exists(command[0]))
                problems.Add($"'{command[0]}' is not there to run{(command[0].Contains('/') ? " (build it, or drop --no-build)" : " (not on PATH)")}");
        var tools = experiments.Where(e => e.Load.Client is null).Select(e => IndependentLoadTools.Find(e.Load.Name)).OfType<IIndependentLoadTool>();
        foreach (var tool in tools.Distinct().Where(t => !t.IsInstalled))
            problems.Add($"{tool.Name} is not installed (scripts/setup.sh installs it; --no-{tool.Name} leaves its rows out)");
        var skipped = experiments.Select(e => Limit(e) is { } l ? $"{e}: {l}" : null).OfType<string>();
        return new PlanProblems(problems.Distinct().ToList(), skipped.Distinct().ToList());
    }

    /// <summary>Why this machine cannot run the experiment, or null. Raises the descriptor limit as far as the hard limit allows.</summary>
    public static string? Limit(Experiment e)
    {
        if (!e.Server.HasServer) return $"{e.Server.Name} has no server";
        // Each connection needs a descriptor at both ends; children inherit the harness's limit.
        if (Limits.EnsureFileDescriptors(e.Connections + 256) is { } fd) return fd;
        if (e.Transport == Transports.Tcp && e.Connections > Limits.EphemeralPorts)
            return $"{e.Connections} connections need more ephemeral ports than net.ipv4.ip_local_port_range gives ({Limits.EphemeralPorts})";
        return null;
    }

    /// <summary>A taskset CPU list whose every CPU this process may run on, or what is wrong with it.</summary>
    public static string? CpuProblem(string list)
    {
        var allowed = AllowedCpus();
        var cpus = new List<int>();
        foreach (var part in list.Split(',', StringSplitOptions.TrimEntries))
        {
            var range = part.Split('-');
            if (range.Length is < 1 or > 2 || !range.All(r => int.TryParse(r, out _))) return "not a CPU list such as 0, 0-1 or 0,2";
            var (lo, hi) = (int.Parse(range[0]), int.Parse(range[^1]));
            if (hi < lo) return $"'{part}' runs backwards";
            cpus.AddRange(Enumerable.Range(lo, hi - lo + 1));
        }
        var missing = cpus.Where(c => !allowed.Contains(c)).ToList();
        return missing.Count == 0 ? null : $"CPU {string.Join(", ", missing)} is not one this machine lets the harness use ({string.Join(",", allowed)})";
    }

    /// <summary>The CPUs in this process's affinity mask (/proc/self/status, Cpus_allowed_list).</summary>
    private static HashSet<int> AllowedCpus()
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal));
        var set = new HashSet<int>();
        foreach (var part in (line?["Cpus_allowed_list:".Length..].Trim() ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var r = part.Split('-');
            for (var c = int.Parse(r[0]); c <= int.Parse(r[^1]); c++) set.Add(c);
        }
        if (set.Count == 0) for (var c = 0; c < Environment.ProcessorCount; c++) set.Add(c);
        return set;
    }
}
