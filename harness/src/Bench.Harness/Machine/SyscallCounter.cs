using System.Globalization;
using System.Runtime.InteropServices;
using Bench.Harness.Processes;

namespace Bench.Harness.Machine;

/// <summary>
/// Counts the system calls a process tree makes over a window (--syscalls): perf stat on the
/// raw_syscalls:sys_enter tracepoint, attached before the window, started disabled and switched
/// on and off through its control FIFO, so the count covers the window and not perf's own start.
/// Opt-in because an enabled syscall tracepoint sends every system call of the machine through
/// the kernel's slower tracing path: it costs the server a little of what it measures.
/// </summary>
public sealed partial class SyscallCounter : IAsyncDisposable
{
    private const string Tracepoints = "/sys/kernel/tracing";
    private const string Event = "raw_syscalls:sys_enter";

    private readonly ManagedProcess _perf;
    private readonly FileStream _control;
    private readonly string _output;

    private SyscallCounter(ManagedProcess perf, FileStream control, string output) => (_perf, _control, _output) = (perf, control, output);

    /// <summary>Why counting cannot work here (perf missing, no tracefs, not root); null when it can. Mounts tracefs when it is only unmounted.</summary>
    public static string? WhyUnavailable()
    {
        if (Programs.WhyNotRunnable("perf", "/", null) is { } why) return $"perf: {why} (scripts/setup.sh installs Debian's linux-perf)";
        if (Environment.UserName != "root") return "counting system calls needs root (perf attaches to the server's syscall tracepoint)";
        if (!Directory.Exists($"{Tracepoints}/events/raw_syscalls") && mount("nodev", Tracepoints, "tracefs", 0, 0) != 0)
            return $"the kernel's tracefs is not mounted at {Tracepoints} and cannot be (errno {Marshal.GetLastPInvokeError()})";
        return Directory.Exists($"{Tracepoints}/events/raw_syscalls") ? null : $"this kernel has no {Event} tracepoint";
    }

    /// <summary>Attaches to every thread of the process tree, counting nothing until <see cref="Enable"/>.</summary>
    public static async Task<SyscallCounter> AttachAsync(int pid, string scratch)
    {
        var name = Path.Combine(scratch, $"perf-{Guid.NewGuid():N}");
        if (mkfifo(name + ".ctl", 0x180) != 0) throw new IOException($"mkfifo {name}.ctl: errno {Marshal.GetLastPInvokeError()}");
        var pids = string.Join(',', new[] { pid }.Concat(ProcFs.Descendants(pid)).Select(p => p.ToString(CultureInfo.InvariantCulture)));
        // Read and write: opening a FIFO for writing alone would block until perf had opened it.
        var control = new FileStream(name + ".ctl", FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, 1, FileOptions.None);
        // perf opens the FIFO once it has attached, and says so: a command sent before then would be lost.
        var attached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var perf = ManagedProcess.Start("perf stat", ["perf", "stat", "--delay", "-1", "--control", $"fifo:{name}.ctl", "-x", ",",
            "-e", Event, "-p", pids, "-o", name + ".out"], scratch,
            onStderr: l => { if (l.Contains("Events disabled", StringComparison.Ordinal)) attached.TrySetResult(); });
        if (await Task.WhenAny(attached.Task, perf.Exited, Task.Delay(TimeSpan.FromSeconds(10))) != attached.Task)
        {
            var why = perf.HasExited ? $"it exited: {perf.StderrTail}" : "it did not attach within 10 s";
            await perf.DisposeAsync();
            await control.DisposeAsync();
            throw new IOException($"perf stat cannot count the server's system calls: {why}");
        }
        return new SyscallCounter(perf, control, name + ".out");
    }

    public void Enable() => Send("enable\n");

    public void Disable() => Send("disable\n");

    private void Send(string command)
    {
        _control.Write(System.Text.Encoding.ASCII.GetBytes(command));
        _control.Flush();
    }

    /// <summary>Ends perf and returns the count over the enabled time; null when it reported none (the server died, say).</summary>
    public async Task<long?> StopAsync()
    {
        _perf.Interrupt(); // perf stat writes its counts on SIGINT
        try { await _perf.Exited.WaitAsync(TimeSpan.FromSeconds(10)); }
        catch (TimeoutException) { return null; }
        return File.Exists(_output) ? Parse(File.ReadLines(_output)) : null;
    }

    /// <summary>The count from perf stat's -x, output: "COUNT,,EVENT,..."; "&lt;not counted&gt;" when never enabled.</summary>
    internal static long? Parse(IEnumerable<string> lines)
    {
        foreach (var line in lines)
        {
            var fields = line.Split(',');
            if (fields.Length > 2 && fields[2] == Event)
                return long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;
        }
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        await _perf.DisposeAsync();
        await _control.DisposeAsync();
        foreach (var f in new[] { _output, _control.Name }) File.Delete(f);
    }

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mkfifo(string path, uint mode);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int mount(string source, string target, string type, ulong flags, nint data);
}
