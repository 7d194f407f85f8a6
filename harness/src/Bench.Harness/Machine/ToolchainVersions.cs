using CliWrap;
using CliWrap.Buffered;

namespace Bench.Harness.Machine;

/// <summary>The first line each toolchain prints of its version, for the result set's machine facts.</summary>
public static class ToolchainVersions
{
    /// <summary>Toolchains, then every independent load tool (each says how to ask its version).</summary>
    private static readonly IReadOnlyList<(string Name, IReadOnlyList<string> Command)> Probes =
    [
        ("dotnet", ["dotnet", "--version"]),
        ("g++", ["g++", "--version"]),
        ("cmake", ["cmake", "--version"]),
        ("rustc", ["rustc", "--version"]),
        ("cargo", ["cargo", "--version"]),
        ("python3", ["python3", "--version"]),
        ("go", ["go", "version"]),
        ("dpdk-testpmd", ["dpkg-query", "-W", "-f=${Version}", "dpdk"]),
        .. LoadTools.IndependentLoadTools.All.Select(t => (t.Name, t.VersionCommand)),
    ];

    public static async Task<IReadOnlyDictionary<string, string>> ReadAsync()
    {
        var versions = await Task.WhenAll(Probes.Select(async p =>
        {
            try
            {
                var r = await Cli.Wrap(p.Command[0]).WithArguments(p.Command.Skip(1))
                    .WithValidation(CommandResultValidation.None).ExecuteBufferedAsync();
                var line = (r.StandardOutput + r.StandardError).Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault()?.Trim();
                return (p.Name, Version: r.ExitCode == 0 && line is not null ? line : "not installed");
            }
            catch (Exception) { return (p.Name, Version: "not installed"); }
        }));
        return versions.ToDictionary(v => v.Name, v => v.Version);
    }
}
