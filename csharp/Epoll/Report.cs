using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Bench.CommandLine;

namespace Bench.Epoll;

/// <summary>
/// The contract's payload pattern (cpp/common/payload.hpp): byte j of request k on connection c
/// is (c + k + j) mod 251, generated and verified on the fly at any offset, so a payload larger
/// than the I/O buffer streams through it and is never held whole.
/// </summary>
internal readonly unsafe struct Payload(long connection, long request)
{
    public const int Modulus = 251;

    private readonly int _first = (int)((connection % Modulus + request % Modulus) % Modulus);

    private int At(long offset) => (int)((_first + offset % Modulus) % Modulus);

    /// <summary>Writes bytes [offset, offset + length) of the request.</summary>
    public void Fill(byte* destination, int length, long offset)
    {
        int value = At(offset);
        for (int i = 0; i < length; i++)
        {
            destination[i] = (byte)value;
            if (++value == Modulus) value = 0;
        }
    }

    /// <summary>True when the bytes hold exactly bytes [offset, offset + length) of the request.</summary>
    public bool Matches(byte* source, int length, long offset)
    {
        int value = At(offset);
        for (int i = 0; i < length; i++)
        {
            if (source[i] != value) return false;
            if (++value == Modulus) value = 0;
        }
        return true;
    }
}

internal enum Failure { Connect, Timeout, Reset, Closed, Mismatch, Io }

/// <summary>Prints the first failure of each kind to stderr; the rest are only counted. Thread-safe.</summary>
internal sealed class FailureLog(string program)
{
    private readonly int[] _seen = new int[6];

    public void Record(Failure kind, string detail)
    {
        if (Interlocked.Exchange(ref _seen[(int)kind], 1) == 0)
            Console.Error.WriteLine($"{program}: first {Name(kind)} failure: {detail}");
    }

    /// <summary>Warm-up failures are left out of RESULT; this says how many there were (if any).</summary>
    public void WarmupFailed(long count)
    {
        if (count > 0) Console.Error.WriteLine($"{program}: warm-up: {count} requests failed");
    }

    private static string Name(Failure kind) => kind switch
    {
        Failure.Connect => "connect",
        Failure.Timeout => "timeout",
        Failure.Reset => "reset",
        Failure.Closed => "short read",
        Failure.Mismatch => "wrong echo",
        _ => "i/o",
    };

    /// <summary>The failure kind for an errno seen while writing or reading an established connection.</summary>
    public static Failure ForErrno(int errno) => errno switch
    {
        Libc.ECONNRESET or Libc.EPIPE or Libc.ECONNABORTED => Failure.Reset,
        Libc.ETIMEDOUT or Libc.EAGAIN => Failure.Timeout,
        Libc.ECONNREFUSED or Libc.ENETUNREACH or Libc.EHOSTUNREACH or Libc.EADDRNOTAVAIL or Libc.EMFILE or Libc.ENFILE => Failure.Connect,
        _ => Failure.Io,
    };
}

/// <summary>
/// Counts of one loop or one whole run, merged upwards. Samples live in native memory, grown by
/// doubling, so the measured window allocates nothing on the managed heap and never collects.
/// </summary>
internal sealed unsafe class Tally : IDisposable
{
    public long Ok, Failed, Bytes;
    public long ConnMin = long.MaxValue, ConnMax;
    private long* _samples;
    private long _count, _capacity;

    public Tally(long expectedSamples = 1 << 16) => Reserve(Math.Max(expectedSamples, 16));

    public long SampleCount => _count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Succeeded(long latencyNs, long payloadBytes)
    {
        Ok++;
        Bytes += payloadBytes;
        if (_count == _capacity) Reserve(_capacity * 2);
        _samples[_count++] = latencyNs;
    }

    /// <summary>Called once per connection when it is done, with how many requests it completed.</summary>
    public void ConnectionFinished(long completed)
    {
        ConnMin = Math.Min(ConnMin, completed);
        ConnMax = Math.Max(ConnMax, completed);
    }

    public void Merge(Tally other)
    {
        Ok += other.Ok;
        Failed += other.Failed;
        Bytes += other.Bytes;
        ConnMin = Math.Min(ConnMin, other.ConnMin);
        ConnMax = Math.Max(ConnMax, other.ConnMax);
        if (_count + other._count > _capacity) Reserve(_count + other._count);
        Buffer.MemoryCopy(other._samples, _samples + _count, (_capacity - _count) * 8, other._count * 8);
        _count += other._count;
    }

    public double LatencySumNs()
    {
        double sum = 0;
        for (long i = 0; i < _count; i++) sum += _samples[i];
        return sum;
    }

    /// <summary>Raw little-endian u64 nanoseconds, one per successful request, no header (docs/contract.md).</summary>
    public void WriteSamples(string path)
    {
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        if (!BitConverter.IsLittleEndian)
            for (long i = 0; i < _count; i++) _samples[i] = System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(_samples[i]);
        for (long done = 0; done < _count;)
        {
            int chunk = (int)Math.Min(_count - done, 1 << 16);
            file.Write(new ReadOnlySpan<byte>(_samples + done, chunk * 8));
            done += chunk;
        }
    }

    private void Reserve(long capacity)
    {
        _samples = (long*)NativeMemory.Realloc(_samples, (nuint)capacity * sizeof(long));
        _capacity = capacity;
    }

    public void Dispose()
    {
        NativeMemory.Free(_samples);
        _samples = null;
        _count = _capacity = 0;
    }
}

/// <summary>What a client run measured; the RESULT and human lines and the exit status (cpp's finish_client).</summary>
internal static class Report
{
    public static int Finish(ClientOptions options, Tally total, long wallNs, CpuTime cpu, string program)
    {
        int status = total.Failed == 0 ? 0 : 1;
        if (options.SamplesPath is { } path)
        {
            try { total.WriteSamples(path); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"{program}: cannot write samples to '{path}': {e.Message}");
                status = 1;
            }
        }
        // No connection finished at all (nothing to take a minimum of): report 0.
        var connMin = total.ConnMin == long.MaxValue ? 0 : total.ConnMin;
        Console.Out.WriteLine($"RESULT ok={total.Ok} failed={total.Failed} wall_ns={wallNs} bytes={total.Bytes} " +
                              $"conn_min={connMin} conn_max={total.ConnMax} cpu_user_us={cpu.UserUs} cpu_sys_us={cpu.SysUs}");
        var avgUs = total.SampleCount == 0 ? 0 : total.LatencySumNs() / total.SampleCount / 1e3;
        Console.Out.WriteLine(FormattableString.Invariant(
            $"C#: {options.Connections} clients, total time = {wallNs / 1e6:F2} ms, avg = {avgUs:F1} μs"));
        Console.Out.Flush();
        return status;
    }
}
