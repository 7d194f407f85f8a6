using Bench.Harness.Catalog;
using Bench.Harness.Workloads;

namespace Bench.Harness.LoadTools;

/// <summary>
/// The program that makes an experiment's load, started with the contract's client arguments:
/// an implementation's own client, or an independent tool behind its adapter. The runner treats
/// both alike; only the results columns tell them apart.
/// </summary>
public sealed record LoadGenerator(string Name, Implementation? Client, string Program, IReadOnlyList<string> Command, string Folder)
{
    /// <summary>An implementation's client: `client` and `load_tool` name the implementation and its client program.</summary>
    public static LoadGenerator ClientOf(Implementation impl) =>
        new(impl.Name, impl, impl.ClientProgram ?? throw new ArgumentException($"{impl.Name} has no client"), impl.ClientCommand!, impl.Folder);

    /// <summary>An independent tool: no implementation's client runs, `load_tool` names the tool.</summary>
    public static LoadGenerator ToolOf(IIndependentLoadTool tool) =>
        new(tool.Name, null, tool.Name, [.. HarnessCommand, "load-tool", tool.Name], AppContext.BaseDirectory);

    /// <summary>This harness, started again as a child (`bench load-tool NAME ...`).</summary>
    private static IReadOnlyList<string> HarnessCommand => ["dotnet", typeof(LoadGenerator).Assembly.Location];
}

/// <summary>
/// A load generator that is not ours, wrapped so that it speaks the contract: its
/// adapter takes the contract's client arguments, runs the tool, and prints the RESULT line and
/// writes the samples file as any client does. Adding one is one file in this folder.
/// </summary>
public interface IIndependentLoadTool
{
    string Name { get; }

    /// <summary>Installed here (scripts/setup.sh installs every tool the project uses).</summary>
    bool IsInstalled { get; }

    /// <summary>The command whose first line of output is the tool's version (for machine.json).</summary>
    IReadOnlyList<string> VersionCommand { get; }

    bool Drives(Workload workload);

    bool Speaks(string transport);

    /// <summary>`bench load-tool NAME <contract client arguments>`: the adapter itself; returns the exit status.</summary>
    Task<int> RunAdapterAsync(IReadOnlyList<string> contractArguments, CancellationToken cancel);
}

public static class IndependentLoadTools
{
    /// <summary>Every independent tool in this assembly, found by type.</summary>
    public static IReadOnlyList<IIndependentLoadTool> All { get; } = typeof(IIndependentLoadTool).Assembly.GetTypes()
        .Where(t => typeof(IIndependentLoadTool).IsAssignableFrom(t) && t is { IsInterface: false, IsAbstract: false })
        .Select(t => (IIndependentLoadTool)Activator.CreateInstance(t)!)
        .OrderBy(t => t.Name, StringComparer.Ordinal).ToList();

    public static IIndependentLoadTool? Find(string name) => All.FirstOrDefault(t => t.Name == name);
}
