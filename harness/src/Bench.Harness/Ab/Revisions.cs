using Bench.Harness.Processes;

namespace Bench.Harness.Ab;

/// <summary>One side of an A/B run: a revision of the repository and the folder it is built and run from.</summary>
public sealed record Revision(string Name, string Commit, string Root, bool Dirty = false)
{
    /// <summary>How a reader sees it: "main (1a2b3c4d5e6f)", "the working tree (1a2b3c4d5e6f + uncommitted changes)".</summary>
    public override string ToString() => $"{Name} ({Commit[..12]}{(Dirty ? " + uncommitted changes" : "")})";
}

/// <summary>A git command that failed, or a revision that is not there: an A/B run cannot start.</summary>
public sealed class RevisionException(string message) : Exception(message);

/// <summary>
/// Checks revisions out with git worktrees, each in a folder of its own named by its commit, so
/// both sides are built from clean sources side by side and a second run reuses the first's
/// build. The working tree itself is a side too: a pull request's change before it is committed.
/// </summary>
public static class Revisions
{
    /// <summary>The repository's own tree, uncommitted changes and all.</summary>
    public static async Task<Revision> WorkingTreeAsync(string repoRoot, CancellationToken cancel)
    {
        var commit = await ResolveAsync(repoRoot, "HEAD", cancel);
        var dirty = (await GitAsync(repoRoot, ["status", "--porcelain", "--untracked-files=no"], cancel)).Length > 0;
        return new Revision("the working tree", commit, repoRoot, dirty);
    }

    /// <summary>Worktrees kept in the cache; beyond that, the least recently used one is recycled for a new commit.</summary>
    private const int Kept = 4;

    /// <summary>
    /// <paramref name="revision"/> (a branch, tag or commit) checked out, detached, in
    /// <paramref name="worktrees"/>/&lt;commit&gt;; a clean checkout already there is reused as it is,
    /// build outputs included. A new commit takes over the least recently used worktree of this
    /// repository (never <paramref name="inUse"/>, the other side's) once the cache is full: it is
    /// moved and checked out at the commit, and its build outputs stay, so only what changed is rebuilt.
    /// </summary>
    public static async Task<Revision> CheckOutAsync(string repoRoot, string revision, string worktrees, CancellationToken cancel, string? inUse = null)
    {
        var commit = await ResolveAsync(repoRoot, revision, cancel);
        worktrees = Path.GetFullPath(worktrees);
        var dir = Path.Combine(worktrees, commit[..12]);
        if (Directory.Exists(dir))
        {
            if (await IsCleanCheckoutOfAsync(dir, commit, cancel)) return Used(new Revision(revision, commit, dir));
            Directory.Delete(dir, recursive: true);
        }
        Directory.CreateDirectory(worktrees);
        // A folder deleted by hand stays registered until pruned, and git refuses to add it again.
        await GitAsync(repoRoot, ["worktree", "prune"], cancel);
        var ours = (await GitAsync(repoRoot, ["worktree", "list", "--porcelain"], cancel)).Split('\n')
            .Where(l => l.StartsWith("worktree ", StringComparison.Ordinal)).Select(l => Path.GetFullPath(l[9..])).ToHashSet();
        var recyclable = Directory.GetDirectories(worktrees).Where(d => ours.Contains(d) && d != inUse)
            .OrderBy(Directory.GetLastWriteTimeUtc).ToList();
        if (Directory.GetDirectories(worktrees).Length >= Kept && recyclable.Count > 0)
        {
            await GitAsync(repoRoot, ["worktree", "move", recyclable[0], dir], cancel);
            await GitAsync(dir, ["checkout", "--quiet", "--force", "--detach", commit], cancel);
        }
        else await GitAsync(repoRoot, ["worktree", "add", "--detach", "--force", dir, commit], cancel);
        return Used(new Revision(revision, commit, dir));
    }

    /// <summary>Marks a worktree as just used, for the least-recently-used choice.</summary>
    private static Revision Used(Revision r)
    {
        Directory.SetLastWriteTimeUtc(r.Root, DateTime.UtcNow);
        return r;
    }

    private static async Task<string> ResolveAsync(string repoRoot, string revision, CancellationToken cancel)
    {
        try { return (await GitAsync(repoRoot, ["rev-parse", "--verify", "--quiet", $"{revision}^{{commit}}"], cancel)).Trim(); }
        catch (RevisionException) { throw new RevisionException($"'{revision}' is not a commit of the repository at {repoRoot} (git rev-parse found nothing)"); }
    }

    private static async Task<bool> IsCleanCheckoutOfAsync(string dir, string commit, CancellationToken cancel)
    {
        try
        {
            return (await GitAsync(dir, ["rev-parse", "HEAD"], cancel)).Trim() == commit
                && (await GitAsync(dir, ["status", "--porcelain", "--untracked-files=no"], cancel)).Length == 0;
        }
        catch (RevisionException) { return false; }
    }

    /// <summary>Runs git in a folder; its standard output, or a <see cref="RevisionException"/> with what git said.</summary>
    private static async Task<string> GitAsync(string dir, IReadOnlyList<string> args, CancellationToken cancel)
    {
        ManagedProcess git;
        try { git = ManagedProcess.Start("git", ["git", .. args], dir); }
        catch (ProcessStartException e) { throw new RevisionException($"{e.Message}; A/B runs need git"); }
        await using (git)
        {
            var exit = await git.Exited.WaitAsync(TimeSpan.FromMinutes(5), cancel);
            if (exit != 0) throw new RevisionException($"git {string.Join(' ', args)} failed in {dir} (status {exit}): {git.StderrTail}");
            return string.Join('\n', git.StdoutLines);
        }
    }
}
