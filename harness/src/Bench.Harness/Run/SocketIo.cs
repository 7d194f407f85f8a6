using System.Net.Sockets;

namespace Bench.Harness.Run;

/// <summary>The few whole-message socket operations the harness's own peers (verifier, torture) need.</summary>
public static class SocketIo
{
    public static async Task<Socket> ConnectAsync(string host, int port, CancellationToken cancel)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try { await socket.ConnectAsync(host, port, cancel); return socket; }
        catch { socket.Dispose(); throw; }
    }

    public static async Task SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken cancel)
    {
        while (!data.IsEmpty) data = data[await socket.SendAsync(data, SocketFlags.None, cancel)..];
    }

    /// <summary>Exactly <paramref name="size"/> bytes; the peer closing first is an EndOfStreamException that says how far it got.</summary>
    public static async Task<byte[]> ReadExactlyAsync(Socket socket, int size, CancellationToken cancel)
    {
        var buffer = new byte[size];
        for (var got = 0; got < size;)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None, cancel);
            if (n == 0) throw new EndOfStreamException($"the server closed after {got} of {size} echoed bytes");
            got += n;
        }
        return buffer;
    }

    /// <summary>Everything until the peer closes its side.</summary>
    public static async Task<byte[]> ReadToEndAsync(Socket socket, CancellationToken cancel)
    {
        using var all = new MemoryStream();
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancel)) > 0) all.Write(buffer, 0, n);
        return all.ToArray();
    }
}
