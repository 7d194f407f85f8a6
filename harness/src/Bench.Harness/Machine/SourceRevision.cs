using CliWrap;
using CliWrap.Buffered;

namespace Bench.Harness.Machine;

/// <summary>The commit the harness and the implementations were built from, and whether the tree had changes on top of it.</summary>
public sealed record SourceRevision(string Commit, bool Dirty)
{
    /// <summary>Null outside a git work tree (a copied folder, an unpacked archive) or where git is missing.</summary>
    public static async Task<SourceRevision?> ReadAsync(string repoRoot)
    {
        try
        {
            var head = await Cli.Wrap("git").WithArguments(["-C", repoRoot, "rev-parse", "HEAD"]).WithValidation(CommandResultValidation.None).ExecuteBufferedAsync();
            if (head.ExitCode != 0) return null;
            var status = await Cli.Wrap("git").WithArguments(["-C", repoRoot, "status", "--porcelain"]).WithValidation(CommandResultValidation.None).ExecuteBufferedAsync();
            return new SourceRevision(head.StandardOutput.Trim(), status.ExitCode != 0 || status.StandardOutput.Trim().Length > 0);
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }
}
