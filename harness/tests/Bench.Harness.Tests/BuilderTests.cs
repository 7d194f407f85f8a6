using Bench.Harness.Build;
using Bench.Harness.Catalog;

namespace Bench.Harness.Tests;

/// <summary>The builder's log, and its "skipped when up to date" stamp, on real folders in temp dirs.</summary>
public class BuilderTests
{
    private static readonly BuildSpec Python = new(Toolchains.Python);
    private static readonly TimeSpan Deadline = TimeSpan.FromMinutes(5);

    private static string[] Compiled(string folder) =>
        Directory.Exists(Path.Combine(folder, "__pycache__")) ? Directory.GetFiles(Path.Combine(folder, "__pycache__"), "*.pyc") : [];

    [Fact]
    public async Task python_folder_builds_once_then_is_up_to_date_until_a_source_changes()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("echo.py"), "print('hello')\n");

        var first = await Builder.BuildAsync(dir.Path, Python, Deadline, CancellationToken.None);
        Assert.True(first.Succeeded, first.Error + "\n" + first.Log);
        Assert.False(first.UpToDate);
        Assert.Contains("py_compile", first.Log);
        Assert.True(File.Exists(dir.File(Builder.StampFile)));
        var pyc = Assert.Single(Compiled(dir.Path));

        // py_compile always writes the .pyc: with it removed, a second build that ran py_compile would leave one again.
        File.Delete(pyc);
        var second = await Builder.BuildAsync(dir.Path, Python, Deadline, CancellationToken.None);
        Assert.True(second.Succeeded, second.Error + "\n" + second.Log);
        Assert.True(second.UpToDate, second.Log);
        Assert.Contains("up to date", second.Log);
        Assert.DoesNotContain("py_compile", second.Log);
        Assert.Empty(Compiled(dir.Path));

        // A different size, so the change is seen whatever the file system's timestamp resolution.
        File.WriteAllText(dir.File("echo.py"), "print('hello, again')\n");
        var third = await Builder.BuildAsync(dir.Path, Python, Deadline, CancellationToken.None);
        Assert.True(third.Succeeded, third.Error + "\n" + third.Log);
        Assert.False(third.UpToDate);
        Assert.Contains("py_compile", third.Log);
        Assert.Single(Compiled(dir.Path));

        // A new source file is a change too; and force builds whatever the stamp says.
        File.WriteAllText(dir.File("other.py"), "x = 1\n");
        Assert.False((await Builder.BuildAsync(dir.Path, Python, Deadline, CancellationToken.None)).UpToDate);
        Assert.True((await Builder.BuildAsync(dir.Path, Python, Deadline, CancellationToken.None)).UpToDate);
        var forced = await Builder.BuildAsync(dir.Path, Python, Deadline, CancellationToken.None, force: true);
        Assert.True(forced.Succeeded);
        Assert.False(forced.UpToDate);
        Assert.Contains("py_compile", forced.Log);
    }

    [Fact]
    public async Task deleting_the_build_output_means_building_again()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("echo.py"), "print('hello')\n");
        Assert.True((await Builder.BuildAsync(dir.Path, Python, Deadline, CancellationToken.None)).Succeeded);
        Directory.Delete(dir.File("__pycache__"), recursive: true);
        var again = await Builder.BuildAsync(dir.Path, Python, Deadline, CancellationToken.None);
        Assert.True(again.Succeeded);
        Assert.False(again.UpToDate);
        Assert.Single(Compiled(dir.Path));
    }

    [Fact]
    public async Task a_failed_build_is_never_up_to_date_and_removes_the_stamp()
    {
        using var dir = new TempDir();
        var source = dir.File("echo.py");
        File.WriteAllText(source, "print('hello')\n");
        Assert.True((await Builder.BuildAsync(dir.Path, Python, Deadline, CancellationToken.None)).Succeeded);
        var goodTime = File.GetLastWriteTimeUtc(source);

        File.WriteAllText(source, "def broken(:\n");
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var failed = await Builder.BuildAsync(dir.Path, Python, Deadline, CancellationToken.None);
            Assert.False(failed.Succeeded);
            Assert.False(failed.UpToDate);
            Assert.Contains("py_compile", failed.Log);
            Assert.False(File.Exists(dir.File(Builder.StampFile)));
        }

        // The good source back exactly as it was when the stamp was written: the failed build removed
        // that stamp, so the folder is built again rather than trusted.
        File.WriteAllText(source, "print('hello')\n");
        File.SetLastWriteTimeUtc(source, goodTime);
        var rebuilt = await Builder.BuildAsync(dir.Path, Python, Deadline, CancellationToken.None);
        Assert.True(rebuilt.Succeeded, rebuilt.Error + "\n" + rebuilt.Log);
        Assert.False(rebuilt.UpToDate);
    }

    [Fact]
    public async Task both_pipes_writing_at_once_lose_no_line()
    {
        using var dir = new TempDir();
        const int lines = 20_000;
        // One line of Python (so the log's "$ ..." line is one line too); both streams flush every line, so both pipes fill at once.
        var script = "import sys; [(print(f'out {i} ' + 'o' * 40, flush=True), print(f'err {i} ' + 'e' * 40, file=sys.stderr, flush=True)) " +
                     $"for i in range({lines})]; sys.exit(3)";
        var outcome = await Builder.BuildAsync(dir.Path, Python, [["python3", "-c", script]], Deadline, CancellationToken.None);

        Assert.False(outcome.Succeeded);
        Assert.Contains("exited with 3", outcome.Error);
        var logged = outcome.Log.Split('\n');
        foreach (var stream in new[] { "out", "err" })
        {
            var filler = new string(stream[0], 40);
            var seen = logged.Where(l => l.StartsWith(stream + " ", StringComparison.Ordinal)).ToList();
            // Every line whole, each once, in the order its stream wrote them.
            Assert.Equal(Enumerable.Range(0, lines).Select(i => $"{stream} {i} {filler}"), seen);
        }
        Assert.Equal(1 + 2 * lines, logged.Count(l => l.Length > 0));
    }

    [Fact]
    public async Task cancelling_mid_build_kills_the_step_and_leaves_no_stamp()
    {
        using var dir = new TempDir();
        using var scratch = new TempDir();
        File.WriteAllText(dir.File("echo.py"), "print('hello')\n");
        Assert.True((await Builder.BuildAsync(dir.Path, Python, Deadline, CancellationToken.None)).Succeeded);
        Assert.True(File.Exists(dir.File(Builder.StampFile)));

        var pidFile = scratch.File("pid");
        var script = "import os, sys, time\nopen(sys.argv[1] + '.tmp', 'w').write(str(os.getpid()))\nos.rename(sys.argv[1] + '.tmp', sys.argv[1])\ntime.sleep(600)\n";
        using var stop = new CancellationTokenSource();
        var build = Builder.BuildAsync(dir.Path, Python, [["python3", "-c", script, pidFile]], TimeSpan.FromMinutes(15), stop.Token);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!File.Exists(pidFile) && !build.IsCompleted && waited.Elapsed < TimeSpan.FromMinutes(1)) await Task.Delay(20);
        Assert.True(File.Exists(pidFile), "the step never started");
        var pid = int.Parse(File.ReadAllText(pidFile), System.Globalization.CultureInfo.InvariantCulture);

        stop.Cancel(); // Ctrl-C
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => build);
        Assert.False(File.Exists(dir.File(Builder.StampFile)));
        waited.Restart();
        while (Directory.Exists($"/proc/{pid}") && waited.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(20);
        Assert.False(Directory.Exists($"/proc/{pid}"), $"the step (pid {pid}) outlived the cancelled build");

        // Nothing vouches for what the interrupted build left: the next build runs.
        var next = await Builder.BuildAsync(dir.Path, Python, Deadline, CancellationToken.None);
        Assert.True(next.Succeeded);
        Assert.False(next.UpToDate);
    }

    [Fact]
    public void dotnet_fingerprint_covers_what_the_project_pulls_in_from_outside_its_folder()
    {
        using var repo = new TempDir();
        File.WriteAllText(repo.File("run-all.sh"), "");
        File.WriteAllText(repo.File("Directory.Build.props"), "<Project />");
        File.WriteAllText(repo.File("Directory.Packages.props"), "<Project />");
        Directory.CreateDirectory(repo.File("shared"));
        File.WriteAllText(repo.File("shared/Shared.cs"), "class Shared {}");
        File.WriteAllText(repo.File("shared/echo.proto"), "syntax = \"proto3\";");
        Directory.CreateDirectory(repo.File("lib/bin"));
        File.WriteAllText(repo.File("lib/Lib.csproj"), "<Project><ItemGroup><Compile Include=\"../shared/Shared.cs\" /></ItemGroup></Project>");
        File.WriteAllText(repo.File("lib/Lib.cs"), "class Lib {}");
        Directory.CreateDirectory(repo.File("app/bin"));
        File.WriteAllText(repo.File("app/App.csproj"),
            "<Project><ItemGroup><ProjectReference Include=\"../lib/Lib.csproj\" /><Protobuf Include=\"..\\shared\\echo.proto\" />" +
            "<Compile Include=\"Local.cs\" /></ItemGroup></Project>");
        File.WriteAllText(repo.File("app/Local.cs"), "class Local {}");
        File.WriteAllText(repo.File("unrelated.txt"), "not an input");
        var spec = new BuildSpec(Toolchains.Dotnet, "App.csproj");
        string Inputs() => string.Join('\n', BuildFingerprint.Of(repo.File("app"), spec, Builder.StepsFor(spec, repo.File("app"))).Inputs);

        var before = Inputs();
        File.WriteAllText(repo.File("unrelated.txt"), "still not an input, whatever its size");
        File.WriteAllText(repo.File("app/bin/App.dll"), "output");
        File.WriteAllText(repo.File("lib/bin/Lib.dll"), "output of the referenced project");
        Assert.Equal(before, Inputs());

        foreach (var input in new[] { "Directory.Build.props", "Directory.Packages.props", "shared/Shared.cs", "shared/echo.proto", "lib/Lib.cs", "lib/Lib.csproj", "app/Local.cs" })
        {
            var previous = Inputs();
            File.AppendAllText(repo.File(input), input == "lib/Lib.csproj" ? "\n<!-- edited -->" : "\n// edited");
            Assert.NotEqual(previous, Inputs());
        }
    }

    [Fact]
    public void declared_inputs_outside_the_folder_are_fingerprinted()
    {
        using var repo = new TempDir();
        Directory.CreateDirectory(repo.File("proto"));
        File.WriteAllText(repo.File("proto/echo.proto"), "syntax = \"proto3\";");
        File.WriteAllText(repo.File("shared.h"), "// shared");
        Directory.CreateDirectory(repo.File("cpp"));
        File.WriteAllText(repo.File("cpp/CMakeLists.txt"), "project(x)");
        var spec = new BuildSpec(Toolchains.Cmake, Inputs: ["../proto", "../shared.h"]);
        string Inputs() => string.Join('\n', BuildFingerprint.Of(repo.File("cpp"), spec, Builder.StepsFor(spec, repo.File("cpp"))).Inputs);

        foreach (var input in new[] { "proto/echo.proto", "shared.h" })
        {
            var previous = Inputs();
            File.AppendAllText(repo.File(input), "\n// edited");
            Assert.NotEqual(previous, Inputs());
        }
        var withNewFile = Inputs();
        File.WriteAllText(repo.File("proto/more.proto"), "syntax = \"proto3\";");
        Assert.NotEqual(withNewFile, Inputs());
        var untouched = Inputs();
        File.WriteAllText(repo.File("unrelated.txt"), "not declared");
        Assert.Equal(untouched, Inputs());
    }

    /// <summary>
    /// The real go toolchain, from clean: go generate writes a package into build/_gopath (the
    /// folder's code generation), go build links it with one of Debian's packages into
    /// build/&lt;directory&gt;, the source tree is left as it was, and the stamp then holds until a
    /// source changes.
    /// </summary>
    [Fact]
    public async Task go_folder_builds_from_clean_with_generated_code_under_build()
    {
        using var dir = new TempDir();
        var spec = new BuildSpec(Toolchains.Go);
        Directory.CreateDirectory(dir.File("hello"));
        // A template the generator copies; not a .go file, so not a package of its own.
        File.WriteAllText(dir.File("greeting.tmpl"), "package greeting\n\nconst Text = \"hello from generated code\"\n");
        File.WriteAllText(dir.File("hello/main.go"), """
            //go:generate mkdir -p ../build/_gopath/src/example/greeting
            //go:generate cp ../greeting.tmpl ../build/_gopath/src/example/greeting/greeting.go
            package main

            import (
            	"fmt"

            	"example/greeting"
            	"google.golang.org/protobuf/encoding/protowire"
            )

            func main() { fmt.Println(greeting.Text, protowire.SizeVarint(300)) }

            """);
        var sources = Sources(dir.Path);

        var first = await Builder.BuildAsync(dir.Path, spec, Deadline, CancellationToken.None);
        Assert.True(first.Succeeded, first.Error + "\n" + first.Log);
        Assert.False(first.UpToDate);
        Assert.Contains("go generate", first.Log);
        Assert.Contains("go build", first.Log);
        Assert.True(File.Exists(dir.File("build/_gopath/src/example/greeting/greeting.go")));
        Assert.Equal("hello from generated code 2", await Run(dir.File("build/hello")));
        Assert.Equal(sources, Sources(dir.Path)); // nothing beside the sources
        Assert.Single(BuildFingerprint.Of(dir.Path, spec, Builder.StepsFor(spec, dir.Path)).Outputs);

        var second = await Builder.BuildAsync(dir.Path, spec, Deadline, CancellationToken.None);
        Assert.True(second.Succeeded);
        Assert.True(second.UpToDate, second.Log);

        // The generator's input changed: generated again and linked again.
        File.WriteAllText(dir.File("greeting.tmpl"), "package greeting\n\nconst Text = \"hello again from generated code\"\n");
        var third = await Builder.BuildAsync(dir.Path, spec, Deadline, CancellationToken.None);
        Assert.True(third.Succeeded, third.Error + "\n" + third.Log);
        Assert.False(third.UpToDate);
        Assert.Equal("hello again from generated code 2", await Run(dir.File("build/hello")));

        // From clean again.
        Directory.Delete(dir.File("build"), recursive: true);
        var clean = await Builder.BuildAsync(dir.Path, spec, Deadline, CancellationToken.None);
        Assert.True(clean.Succeeded, clean.Error + "\n" + clean.Log);
        Assert.False(clean.UpToDate);
        Assert.Equal("hello again from generated code 2", await Run(dir.File("build/hello")));

        static string Sources(string folder) => string.Join('\n', Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(folder, f)).Where(f => !f.StartsWith("build/", StringComparison.Ordinal) && f != Builder.StampFile)
            .Order(StringComparer.Ordinal));

        static async Task<string> Run(string program)
        {
            using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(program) { RedirectStandardOutput = true })!;
            var output = await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync();
            Assert.Equal(0, process.ExitCode);
            return output.Trim();
        }
    }

    [Fact]
    public void go_steps_build_in_gopath_mode_with_the_folder_build_gopath_first()
    {
        using var dir = new TempDir();
        var steps = Builder.StepsFor(new BuildSpec(Toolchains.Go), dir.Path);
        var environment = new[] { "env", "GO111MODULE=off", "GOFLAGS=", $"GOPATH={dir.Path}/build/_gopath:{Builder.DebianGoPath}" };
        IReadOnlyList<IReadOnlyList<string>> expected = [[.. environment, "go", "generate", "./..."], [.. environment, "go", "build", "-trimpath", "-o", "build/", "./..."]];
        Assert.Equal(expected, steps);
        Assert.All(steps, step => Assert.Equal("go", Builder.ProgramOf(step))); // what the plan check looks for
    }

    [Fact]
    public void cargo_src_bin_is_source_and_target_is_output()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("Cargo.toml"), "[package]\nname = \"x\"\n");
        Directory.CreateDirectory(dir.File("src/bin"));
        File.WriteAllText(dir.File("src/bin/server.rs"), "fn main() {}");
        var spec = new BuildSpec(Toolchains.Cargo);
        BuildFingerprint.Fingerprint Now() => BuildFingerprint.Of(dir.Path, spec, Builder.StepsFor(spec, dir.Path));

        var before = Now();
        Assert.Empty(before.Outputs);
        Directory.CreateDirectory(dir.File("target/release"));
        File.WriteAllText(dir.File("target/release/server"), "binary");
        var built = Now();
        Assert.Equal(before.Inputs, built.Inputs);
        Assert.Single(built.Outputs);

        File.WriteAllText(dir.File("src/bin/server.rs"), "fn main() { println!(); }");
        Assert.NotEqual(before.Inputs, Now().Inputs);
    }
}
