using System.Diagnostics;
using System.Net.Sockets;
using System.Net;
using Bench.Harness.Run;

namespace Bench.Harness.Torture;

/// <summary>One hostile-peer case and how it went.</summary>
public sealed record CaseResult(string Case, bool Passed, string Detail);

/// <summary>
/// Rude peers a server in the catalog must survive (issue: reliability). Each case ends by
/// checking that the server is still alive and still echoes exactly; the last case is a plain
/// byte-exact echo after all the others.
/// </summary>
public sealed class TortureCases(string host, int port, Func<bool> serverAlive, Func<long> serverRssKb, int idleConnections = 2000)
{
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(30);

    public async Task<IReadOnlyList<CaseResult>> RunAllAsync(CancellationToken cancel)
    {
        (string Name, Func<CancellationToken, Task<string>> Run)[] cases =
        [
            ("random bytes (256 KiB) echoed exactly", RandomBytesAsync),
            ("one byte at a time (200 sends)", OneByteAtATimeAsync),
            ("half-close: echo what arrived, then close", HalfCloseAsync),
            ("abrupt reset mid-echo (1 MiB sent, RST)", ResetMidEchoAsync),
            ($"{idleConnections} idle connections held, then an echo", IdleConnectionsAsync),
            ("slow reader, 1 MiB payloads: back-pressure, not buffering", SlowReaderAsync),
            ("connect and close without sending (200 times)", ConnectAndCloseAsync),
            ("normal echo afterwards is exact", FinalEchoAsync),
        ];
        var results = new List<CaseResult>();
        foreach (var (name, run) in cases)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            deadline.CancelAfter(CaseTimeout);
            string detail;
            bool passed;
            try
            {
                detail = await run(deadline.Token);
                passed = serverAlive();
                if (!passed) detail = $"the server died ({detail})";
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or TortureFailure)
            {
                passed = false;
                detail = e is OperationCanceledException && !cancel.IsCancellationRequested ? $"no answer within {CaseTimeout.TotalSeconds:F0} s" : e.Message;
                if (!serverAlive()) detail += "; the server died";
            }
            results.Add(new CaseResult(name, passed, detail));
        }
        return results;
    }

    private static void Expect(byte[] sent, byte[] got, string what)
    {
        if (!sent.AsSpan().SequenceEqual(got))
            throw new TortureFailure($"{what}: echo differs at byte {sent.AsSpan().CommonPrefixLength(got)}");
    }

    private async Task<string> RandomBytesAsync(CancellationToken cancel)
    {
        var data = new byte[256 * 1024];
        new Random(1).NextBytes(data);
        using var s = await SocketIo.ConnectAsync(host, port, cancel);
        var reading = SocketIo.ReadExactlyAsync(s, data.Length, cancel);
        await SocketIo.SendAllAsync(s, data, cancel);
        Expect(data, await reading, "random bytes");
        return "exact";
    }

    private async Task<string> OneByteAtATimeAsync(CancellationToken cancel)
    {
        using var s = await SocketIo.ConnectAsync(host, port, cancel);
        for (var i = 0; i < 200; i++)
        {
            await s.SendAsync(new[] { (byte)i }, SocketFlags.None, cancel);
            var got = await SocketIo.ReadExactlyAsync(s, 1, cancel);
            if (got[0] != (byte)i) throw new TortureFailure($"byte {i} came back as {got[0]}");
        }
        return "200 single-byte round trips exact";
    }

    private async Task<string> HalfCloseAsync(CancellationToken cancel)
    {
        using var s = await SocketIo.ConnectAsync(host, port, cancel);
        var data = Enumerable.Range(0, 1000).Select(i => (byte)(i * 13)).ToArray();
        await SocketIo.SendAllAsync(s, data, cancel);
        s.Shutdown(SocketShutdown.Send);
        var all = await SocketIo.ReadToEndAsync(s, cancel);
        Expect(data, all, "after half-close");
        return "echoed 1000 bytes, then closed";
    }

    private async Task<string> ResetMidEchoAsync(CancellationToken cancel)
    {
        for (var i = 0; i < 20; i++)
        {
            using var s = await SocketIo.ConnectAsync(host, port, cancel);
            var sending = SocketIo.SendAllAsync(s, new byte[1 << 20], cancel);
            await SocketIo.ReadExactlyAsync(s, 1000, cancel);
            s.LingerState = new LingerOption(true, 0); // close now sends RST, mid-echo
            s.Close();
            try { await sending; } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
        }
        return "20 resets";
    }

    private async Task<string> IdleConnectionsAsync(CancellationToken cancel)
    {
        var before = serverRssKb();
        var idle = new List<Socket>();
        try
        {
            for (var i = 0; i < idleConnections; i++) idle.Add(await SocketIo.ConnectAsync(host, port, cancel));
            var echo = await FinalEchoAsync(cancel);
            return $"{idle.Count} held; {echo}; server memory +{(serverRssKb() - before) / 1024.0:F1} MiB";
        }
        finally { foreach (var s in idle) s.Dispose(); }
    }

    /// <summary>
    /// Sends 1 MiB payloads without reading. A server with back-pressure stops reading when its
    /// writes block, so our sends stall once the socket buffers are full; a server that buffers
    /// without bound keeps reading and its memory grows by what we sent.
    /// </summary>
    private async Task<string> SlowReaderAsync(CancellationToken cancel)
    {
        const int Payload = 1 << 20, MaxPayloads = 64;
        var before = serverRssKb();
        using var s = await SocketIo.ConnectAsync(host, port, cancel);
        s.ReceiveBufferSize = 64 * 1024;
        var chunk = new byte[Payload];
        new Random(2).NextBytes(chunk);
        long sent = 0;
        var stalled = false;
        for (var i = 0; i < MaxPayloads && !stalled; i++)
        {
            var send = SocketIo.SendAllAsync(s, chunk, cancel);
            // A send that makes no progress for a second means the server has stopped reading: back-pressure.
            if (await Task.WhenAny(send, Task.Delay(TimeSpan.FromSeconds(1), cancel)) != send) stalled = true;
            else sent += Payload;
            if (stalled)
            {
                var growth = (serverRssKb() - before) / 1024.0;
                // Drain everything: what is in flight must still come back exactly.
                var reading = DrainAsync(s, chunk, cancel);
                await send;
                sent += Payload;
                s.Shutdown(SocketShutdown.Send);
                var received = await reading;
                if (received != sent) throw new TortureFailure($"sent {sent} bytes, got {received} back");
                if (growth > 32) throw new TortureFailure($"server memory grew {growth:F0} MiB for a reader that did not read");
                return $"sends stalled after {sent / Payload - 1} MiB (back-pressure); server memory +{growth:F1} MiB; all {sent / Payload} MiB echoed exactly";
            }
        }
        throw new TortureFailure($"{MaxPayloads} MiB went in without a stall: the server buffers without bound (memory +{(serverRssKb() - before) / 1024.0:F0} MiB)");
    }

    private static async Task<long> DrainAsync(Socket s, byte[] chunk, CancellationToken cancel)
    {
        var buffer = new byte[64 * 1024];
        long total = 0;
        int n;
        while ((n = await s.ReceiveAsync(buffer, SocketFlags.None, cancel)) > 0)
        {
            for (var i = 0; i < n; i++)
                if (buffer[i] != chunk[(total + i) % chunk.Length])
                    throw new TortureFailure($"echo differs at byte {total + i}");
            total += n;
        }
        return total;
    }

    private async Task<string> ConnectAndCloseAsync(CancellationToken cancel)
    {
        for (var i = 0; i < 200; i++)
            using (await SocketIo.ConnectAsync(host, port, cancel)) { }
        return "200 empty connections";
    }

    private async Task<string> FinalEchoAsync(CancellationToken cancel) =>
        await EchoVerifier.VerifyAsync(host, port, CaseTimeout, cancel) is { } wrong ? throw new TortureFailure(wrong) : "byte-exact echo of 1 B to 64 KiB";
}

public sealed class TortureFailure(string message) : Exception(message);
