// The targets keep their sockets and shared memory for the whole process, and count its descriptors: one test at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Fuzz.Tests;

/// <summary>
/// Every seed and every input a crash was once found with, replayed through its target without
/// afl-fuzz: the brief run of each fuzz target that CI does (`./run-all.sh fuzz` is the real fuzzing).
/// </summary>
public class ReplayTests
{
    private static readonly string Here = AppContext.BaseDirectory;

    public static TheoryData<string, string> Inputs()
    {
        var data = new TheoryData<string, string>();
        foreach (var folder in new[] { "corpus", "regressions" })
            foreach (var target in FuzzTarget.All)
            {
                var dir = Path.Combine(Here, folder, target.Name);
                if (!Directory.Exists(dir)) continue;
                foreach (var file in Directory.GetFiles(dir).Order(StringComparer.Ordinal))
                    data.Add(target.Name, Path.GetRelativePath(Here, file));
            }
        return data;
    }

    [Theory]
    [MemberData(nameof(Inputs))]
    public async Task Input_runs_through_its_target_without_a_crash(string target, string file)
    {
        var input = await File.ReadAllBytesAsync(Path.Combine(Here, file));
        // A hang is a crash too; afl-fuzz's own limit is 10 s (scripts/fuzz.sh).
        await Task.Run(() => FuzzTarget.Find(target)!.Run(input)).WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void Every_target_has_a_seed_corpus()
    {
        foreach (var target in FuzzTarget.All)
            Assert.True(Directory.Exists(Path.Combine(Here, "corpus", target.Name)) && Directory.EnumerateFiles(Path.Combine(Here, "corpus", target.Name)).Any(),
                $"corpus/{target.Name} is empty");
    }

    /// <summary>Seeds built with the code's own encoders go stale when a protocol changes: `fuzz seeds TARGET DIR` writes them anew.</summary>
    [Fact]
    public void Corpus_holds_every_built_in_seed_as_the_code_builds_it_today()
    {
        foreach (var target in FuzzTarget.All)
            foreach (var (name, input) in target.Seeds)
            {
                var file = Path.Combine(Here, "corpus", target.Name, name);
                Assert.True(File.Exists(file), $"corpus/{target.Name}/{name} is missing");
                Assert.True(input.AsSpan().SequenceEqual(File.ReadAllBytes(file)), $"corpus/{target.Name}/{name} differs from the seed the code builds");
            }
    }
}
