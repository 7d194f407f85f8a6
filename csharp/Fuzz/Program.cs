using Fuzz;
using SharpFuzz;

const string Usage = """
    usage: fuzz TARGET                  feed inputs from afl-fuzz (one from stdin without it)
           fuzz replay TARGET PATH...   run each file (or every file in each folder) once; exit 1 on a crash
           fuzz seeds TARGET DIR        write the target's built-in seed inputs into DIR
           fuzz list                    every target and what it reads
    """;

switch (args)
{
    case ["list"]:
        foreach (var t in FuzzTarget.All) Console.WriteLine($"{t.Name,-24} {t.Reads}");
        return 0;

    case ["replay", var name, .. var paths] when paths.Length > 0:
    {
        var target = Find(name);
        var crashes = 0;
        foreach (var file in paths.SelectMany<string, string>(p => Directory.Exists(p) ? Directory.GetFiles(p).Order(StringComparer.Ordinal) : [p]))
        {
            try
            {
                target.Run(File.ReadAllBytes(file));
            }
            catch (Exception e)
            {
                crashes++;
                Console.WriteLine($"crash {file}\n{e}\n");
            }
        }
        return crashes == 0 ? 0 : 1;
    }

    case ["seeds", var name, var dir]:
        Directory.CreateDirectory(dir);
        foreach (var (seed, input) in Find(name).Seeds) File.WriteAllBytes(Path.Combine(dir, seed), input);
        return 0;

    case [var name] when !name.StartsWith('-'):
    {
        var target = Find(name);
        // SharpFuzz's fork server: afl-fuzz hands each input on stdin, and an exception that
        // escapes this action is reported to it as a crash.
        Fuzzer.Run(stdin =>
        {
            using var input = new MemoryStream();
            stdin.CopyTo(input);
            target.Run(input.GetBuffer().AsSpan(0, (int)input.Length));
        });
        return 0;
    }

    default:
        Console.Error.WriteLine(Usage);
        return 2;
}

static FuzzTarget Find(string name) => FuzzTarget.Find(name)
    ?? throw new ArgumentException($"no fuzz target '{name}'; known: {string.Join(", ", FuzzTarget.All.Select(t => t.Name))}");
