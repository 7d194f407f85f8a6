using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Bench.Echo;

/// <summary>
/// The TCP echo server. Four designs share the listener and signal handling; `zerobyte`
/// (a task per connection over Socket.ReceiveAsync/SendAsync that rents a pooled buffer only
/// while it has data) is the catalog default: as fast as any here, and the lightest while
/// connections wait. See csharp/README.md for figures.
/// </summary>
public static class EchoServer
{
    // Larger than a 100 B request and most of a 64 KiB one, small enough that 10,000 held
    // connections cost ~160 MiB rather than gigabytes.
    private const int BufferSize = 16 * 1024;

    public static async Task<int> RunAsync(ServerOptions options)
    {
        // Run socket continuations on the epoll thread instead of hopping to the thread pool:
        // measured 0.40-0.55x of a C epoll server without it, 0.86-0.93x with it (docs/design).
        // The runtime reads this once, when the first socket is created, so it must come first.
        Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");

        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(IPAddress.Parse(options.Host), options.Port)); // an IP address: ServerOptions checked it
        }
        catch (SocketException e)
        {
            Console.Error.WriteLine($"csharp-echo: cannot listen on {options.Host}:{options.Port}: {e.Message}");
            return 1;
        }
        // Ask for the most; the kernel clamps to net.core.somaxconn. A 10k burst overflows a
        // small queue and the dropped SYNs come back only after the 1 s retransmit timer.
        listener.Listen(65535);

        using var stop = new CancellationTokenSource();
        using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
        using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });

        var bound = (IPEndPoint)listener.LocalEndPoint!;
        Console.Out.WriteLine($"READY tcp {bound.Address}:{bound.Port}");
        Console.Out.Flush();

        var serve = ConnectionHandler(options.Design);
        var backoff = new AcceptBackoff(Console.Error, stop.Token);
        try
        {
            // One accept loop for every design: out of descriptors or memory it waits and goes on.
            while (!stop.IsCancellationRequested)
            {
                if (backoff.AtBudget)
                {
                    await backoff.WaitAtBudgetAsync();
                    continue;
                }
                Socket socket;
                try
                {
                    socket = await listener.AcceptAsync(stop.Token);
                }
                catch (SocketException e) when (AcceptBackoff.IsResourceExhaustion(e.SocketErrorCode))
                {
                    await backoff.WaitAsync(e);
                    continue;
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset)
                {
                    continue; // ECONNABORTED: that peer gave up before its accept; the next one is fine
                }
                backoff.Reset();
                socket.NoDelay = true;
                backoff.Hold(serve(socket));
            }
        }
        catch (OperationCanceledException) { }
        return 0;
    }

    /// <summary>What serves one accepted connection, per design; the microbenchmarks call it in-process.</summary>
    public static Func<Socket, Task> ConnectionHandler(ServerDesign design) => design switch
    {
        ServerDesign.Async => ServeAsync,
        ServerDesign.ZeroByte => ServeZeroByteAsync,
        ServerDesign.Pipelines => ServePipelinesAsync,
        _ => socket => SaeaConnection.Start(socket, BufferSize),
    };

    private static async Task ServeAsync(Socket socket)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            int read;
            // Not reading while a send is pending is the back-pressure: a slow reader fills
            // its own socket buffers, never this process's memory.
            while ((read = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None)) > 0)
                await SendAllAsync(socket, buffer.AsMemory(0, read));
        }
        catch (SocketException) { } // a peer that resets is the peer's business
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            socket.Dispose();
        }
    }

    /// <summary>
    /// `async`, but a connection waits for data with a zero-byte receive and rents its buffer only
    /// while it has something to echo, so an idle connection holds no buffer (Kestrel's
    /// WaitForDataBeforeAllocatingBuffer). One more receive per request.
    /// </summary>
    private static async Task ServeZeroByteAsync(Socket socket)
    {
        try
        {
            while (true)
            {
                await socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None);
                var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
                try
                {
                    int read = await socket.ReceiveAsync(buffer.AsMemory(), SocketFlags.None);
                    if (read == 0) return;
                    await SendAllAsync(socket, buffer.AsMemory(0, read));
                }
                finally { ArrayPool<byte>.Shared.Return(buffer); }
            }
        }
        catch (SocketException) { } // a peer that resets is the peer's business
        finally { socket.Dispose(); }
    }

    private static async ValueTask SendAllAsync(Socket socket, ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
            data = data[await socket.SendAsync(data, SocketFlags.None)..];
    }

    private static async Task ServePipelinesAsync(Socket socket)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        var reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: BufferSize));
        var writer = PipeWriter.Create(stream);
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync();
                foreach (var segment in result.Buffer)
                    await writer.WriteAsync(segment);
                reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted) break;
            }
        }
        catch (IOException) { }
        await reader.CompleteAsync();
        await writer.CompleteAsync();
    }
}

/// <summary>
/// The SocketAsyncEventArgs design: one args object per connection, reused for every
/// receive and send, callbacks instead of tasks (no state machine per operation).
/// </summary>
sealed class SaeaConnection
{
    private readonly Socket _socket;
    private readonly SocketAsyncEventArgs _args = new();
    private readonly byte[] _buffer;
    private readonly TaskCompletionSource _closed = new();
    private int _pendingSendEnd;

    private SaeaConnection(Socket socket, int bufferSize)
    {
        _socket = socket;
        _buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
        _args.Completed += (_, a) => OnCompleted(a);
    }

    /// <summary>Starts serving; the task ends when the connection is closed.</summary>
    public static Task Start(Socket socket, int bufferSize)
    {
        var connection = new SaeaConnection(socket, bufferSize);
        connection.Receive();
        return connection._closed.Task;
    }

    private void Receive()
    {
        // Loop while operations complete synchronously, so a chatty peer cannot grow the stack.
        while (true)
        {
            _args.SetBuffer(_buffer, 0, _buffer.Length);
            if (_socket.ReceiveAsync(_args)) return;
            if (!OnReceived(_args)) return;
        }
    }

    private void OnCompleted(SocketAsyncEventArgs a)
    {
        var goOn = a.LastOperation == SocketAsyncOperation.Receive ? OnReceived(a) : OnSent(a);
        if (goOn) Receive();
    }

    /// <summary>Returns true when the next receive may start now.</summary>
    private bool OnReceived(SocketAsyncEventArgs a)
    {
        if (a.SocketError != SocketError.Success || a.BytesTransferred == 0) { Close(); return false; }
        _pendingSendEnd = a.BytesTransferred;
        return Send(0);
    }

    private bool Send(int offset)
    {
        while (offset < _pendingSendEnd)
        {
            _args.SetBuffer(_buffer, offset, _pendingSendEnd - offset);
            if (_socket.SendAsync(_args)) return false;
            if (_args.SocketError != SocketError.Success) { Close(); return false; }
            offset += _args.BytesTransferred;
        }
        return true;
    }

    private bool OnSent(SocketAsyncEventArgs a)
    {
        if (a.SocketError != SocketError.Success) { Close(); return false; }
        return Send(a.Offset + a.BytesTransferred);
    }

    private void Close()
    {
        _socket.Dispose();
        _args.Dispose();
        ArrayPool<byte>.Shared.Return(_buffer);
        _closed.SetResult();
    }
}
