using System.Net.Sockets;

namespace Bench.Harness.Run;

/// <summary>
/// The byte-exact check every raw echo server passes before it is timed (as TechEmpower's
/// toolset verifies before it benchmarks): a wrong server is reported, never measured.
/// </summary>
public static class EchoVerifier
{
    private static readonly int[] Sizes = [1, 100, 4096, 65536];

    /// <summary>Null when the server echoes exactly; otherwise what went wrong.</summary>
    public static async Task<string?> VerifyAsync(string host, int port, TimeSpan timeout, CancellationToken cancel)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        deadline.CancelAfter(timeout);
        try
        {
            using (var socket = await SocketIo.ConnectAsync(host, port, deadline.Token))
                foreach (var size in Sizes)
                {
                    var sent = Pattern(size, seed: size);
                    var (sending, echo) = (SocketIo.SendAllAsync(socket, sent, deadline.Token), SocketIo.ReadExactlyAsync(socket, size, deadline.Token));
                    await sending;
                    if (await echo is var got && !got.AsSpan().SequenceEqual(sent))
                        return $"the echo of a {size}-byte payload differs from what was sent (first difference at byte {got.AsSpan().CommonPrefixLength(sent)})";
                }

            // Half-close: the server must echo what arrived, then close its side too.
            using (var socket = await SocketIo.ConnectAsync(host, port, deadline.Token))
            {
                var sent = Pattern(100, seed: 7);
                await SocketIo.SendAllAsync(socket, sent, deadline.Token);
                socket.Shutdown(SocketShutdown.Send);
                var got = await SocketIo.ReadToEndAsync(socket, deadline.Token);
                if (!got.AsSpan().SequenceEqual(sent))
                    return $"after a half-close the server sent {got.Length} bytes, not the 100 it was sent";
            }
            return null;
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            return $"no complete echo within {timeout.TotalSeconds:F0} s";
        }
        catch (Exception e) when (e is SocketException or IOException or EndOfStreamException)
        {
            return $"connection failed during the check: {e.Message}";
        }
    }

    private static byte[] Pattern(int size, int seed)
    {
        var bytes = new byte[size];
        for (var i = 0; i < size; i++) bytes[i] = (byte)((seed + i * 7) % 253);
        return bytes;
    }
}
