using Bench.Harness.Catalog;
using CliWrap;
using CliWrap.Buffered;

namespace Bench.Harness.Remote;

/// <summary>
/// Ships what the harness built to a host: each implementation's programs under the host's
/// folder, at the same path relative to it as in the repository (so a manifest's relative paths
/// hold there too), as a tar stream over the host's ssh connection. Nothing on a host is assumed
/// to be shared with this machine, not even on the test bed, where it would be.
/// </summary>
public sealed class Shipper(string repoRoot, Ssh ssh)
{
    /// <summary>Where an implementation's folder is on the host.</summary>
    public string RemoteFolder(RemoteHost host, Implementation impl) => $"{host.Dir.TrimEnd('/')}/{Path.GetRelativePath(repoRoot, impl.Folder)}";

    /// <summary>A command as the host runs it: every path into the repository turned into the same path under the host's folder.</summary>
    public IReadOnlyList<string> RemoteCommand(RemoteHost host, IReadOnlyList<string> command) =>
        command.Select(a => Path.IsPathRooted(a) && a.StartsWith(repoRoot + "/", StringComparison.Ordinal)
            ? $"{host.Dir.TrimEnd('/')}/{Path.GetRelativePath(repoRoot, a)}" : a).ToList();

    /// <summary>
    /// The files an implementation's commands need, relative to its folder: for each program or
    /// argument that is a file there, its folder's files (a script's modules, a binary's
    /// siblings), and all of it below when it is a .NET output folder (a *.deps.json beside it:
    /// its runtimes/ and satellite folders).
    /// </summary>
    public static IReadOnlyList<string> FilesOf(Implementation impl)
    {
        var files = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var arg in new[] { impl.ServerCommand, impl.ClientCommand }.OfType<IReadOnlyList<string>>().SelectMany(c => c))
        {
            var path = Path.GetFullPath(arg, impl.Folder);
            if (!File.Exists(path) || !path.StartsWith(impl.Folder + "/", StringComparison.Ordinal)) continue;
            var dir = Path.GetDirectoryName(path)!;
            var recursive = Directory.EnumerateFiles(dir, "*.deps.json").Any();
            foreach (var f in Directory.EnumerateFiles(dir, "*", recursive ? SearchOption.AllDirectories : SearchOption.TopDirectoryOnly))
                files.Add(Path.GetRelativePath(impl.Folder, f));
        }
        return files.ToList();
    }

    /// <summary>Ships the implementations to the host and checks that every program is there and runnable; an error names the host and the file.</summary>
    public async Task ShipAsync(RemoteHost host, IEnumerable<Implementation> impls, CancellationToken cancel)
    {
        foreach (var impl in impls.DistinctBy(i => i.Folder))
        {
            var files = FilesOf(impl);
            if (files.Count == 0) continue;
            var target = RemoteFolder(host, impl);
            var tar = Cli.Wrap("tar").WithArguments(["-C", impl.Folder, "-cf", "-", "--", .. files]).WithValidation(CommandResultValidation.None);
            var unpack = ssh.Command(host, ["sh", "-c", "mkdir -p \"$1\" && tar -C \"$1\" -xf -", "bench-ship", target]);
            var result = await (tar | Cli.Wrap(unpack[0]).WithArguments(unpack.Skip(1)).WithValidation(CommandResultValidation.None))
                .ExecuteBufferedAsync(cancel);
            if (result.ExitCode != 0)
                throw new HostCheckException($"host {host.Name}: shipping {impl.Name} to {target} failed (exit {result.ExitCode}): {result.StandardError.Trim()}");
        }
        // Every program that is a file of ours must be there and executable (a script run by an interpreter need only be there).
        var programs = impls.SelectMany(i => new[] { i.ServerCommand, i.ClientCommand }.OfType<IReadOnlyList<string>>())
            .Where(c => c[0].StartsWith(repoRoot + "/", StringComparison.Ordinal)).Select(c => RemoteCommand(host, c)[0]).Distinct().ToList();
        if (programs.Count == 0) return;
        var (exit, stdout, stderr) = await ssh.ShellAsync(host, """for p in "$@"; do [ -x "$p" ] || echo "$p"; done""", programs, TimeSpan.FromSeconds(30), cancel);
        if (exit != 0 || stdout.Trim().Length > 0)
            throw new HostCheckException($"host {host.Name}: not there or not executable after shipping: {(stdout.Trim().Length > 0 ? stdout.Trim().Replace('\n', ' ') : stderr)}");
    }
}
