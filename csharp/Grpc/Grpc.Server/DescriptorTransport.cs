using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace GrpcBench.Server;

/// <summary>A socket that is already bound and listening, named by its descriptor (a VSOCK socket).</summary>
public sealed class DescriptorEndPoint(nint fd, string description) : EndPoint
{
    public nint Fd => fd;
    public override string ToString() => description;
}

/// <summary>
/// A Kestrel transport for listening sockets .NET cannot describe. Kestrel's own ListenHandle
/// wraps the descriptor in a Socket whose AcceptAsync fails for AF_VSOCK (no EndPoint type to
/// create; aspnetcore issue 34050), so this transport accepts with accept4(2) itself and moves
/// bytes between the accepted socket and Kestrel's pipes. It binds nothing but
/// <see cref="DescriptorEndPoint"/>; TCP and Unix sockets stay on Kestrel's socket transport.
/// </summary>
sealed class DescriptorTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    public bool CanBind(EndPoint endpoint) => endpoint is DescriptorEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancel) =>
        ValueTask.FromResult<IConnectionListener>(new DescriptorListener((DescriptorEndPoint)endpoint));
}

sealed class DescriptorListener(DescriptorEndPoint endpoint) : IConnectionListener
{
    private const int SockCloexec = 0x80000, ShutRdwr = 2, EIntr = 4;
    private volatile bool _closed;
    private long _ids;

    [DllImport("libc", EntryPoint = "accept4", SetLastError = true)]
    private static extern int Accept4(nint fd, nint addr, nint len, int flags);

    [DllImport("libc", EntryPoint = "shutdown", SetLastError = true)]
    private static extern int Shutdown(nint fd, int how);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(nint fd);

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [DllImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static extern int Poll(ref PollFd fds, nuint count, int timeoutMs);

    private const short PollIn = 1;
    private const int NotYet = -2;

    public EndPoint EndPoint => endpoint;

    private int WaitAndAccept()
    {
        var pfd = new PollFd { Fd = (int)endpoint.Fd, Events = PollIn };
        for (var i = 0; i < 50 && !_closed; i++)
            if (Poll(ref pfd, 1, 100) > 0) return Accept4(endpoint.Fd, 0, 0, SockCloexec);
        return NotYet; // give the thread back now and then
    }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancel = default)
    {
        while (!_closed)
        {
            // Wait for a connection on a thread of its own: there is no async accept for a
            // descriptor .NET cannot wrap. poll(2) with a short timeout, because shutdown(2) does
            // not wake a blocked accept on every socket family (it does not on AF_VSOCK).
            var fd = await Task.Factory.StartNew(WaitAndAccept, cancel, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            if (fd == NotYet) continue;
            if (fd >= 0)
            {
                var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
                return new DescriptorConnection(socket, endpoint, $"{endpoint}#{Interlocked.Increment(ref _ids)}");
            }
            if (Marshal.GetLastPInvokeError() != EIntr && !_closed)
                await Task.Delay(10, cancel); // EMFILE and the like: back off instead of spinning
        }
        return null;
    }

    public ValueTask UnbindAsync(CancellationToken cancel = default)
    {
        _closed = true;
        Shutdown(endpoint.Fd, ShutRdwr);
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _closed = true;
        Shutdown(endpoint.Fd, ShutRdwr);
        Close(endpoint.Fd);
        return ValueTask.CompletedTask;
    }
}

/// <summary>One accepted connection: a receive loop into Kestrel's input pipe, a send loop from its output.</summary>
sealed class DescriptorConnection : ConnectionContext
{
    private readonly Socket _socket;
    private readonly Pipe _input = new(), _output = new();
    private readonly CancellationTokenSource _closed = new();
    private readonly Task _pumps;

    public DescriptorConnection(Socket socket, EndPoint local, string id)
    {
        _socket = socket;
        LocalEndPoint = local;
        ConnectionId = id;
        Transport = new DuplexPipe(_input.Reader, _output.Writer);
        ConnectionClosed = _closed.Token;
        _pumps = Task.WhenAll(ReceiveAsync(), SendAsync());
    }

    public override string ConnectionId { get; set; }
    public override IFeatureCollection Features { get; } = new FeatureCollection();
    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();
    public override IDuplexPipe Transport { get; set; }

    private async Task ReceiveAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                var memory = _input.Writer.GetMemory(4096);
                var n = await _socket.ReceiveAsync(memory, SocketFlags.None);
                if (n == 0) break;
                _input.Writer.Advance(n);
                // Back-pressure: when Kestrel is behind, this waits and we stop reading the socket.
                if ((await _input.Writer.FlushAsync()).IsCompleted) break;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            error = new ConnectionResetException(e.Message, e);
        }
        await _input.Writer.CompleteAsync(error);
        _closed.Cancel();
    }

    private async Task SendAsync()
    {
        try
        {
            while (true)
            {
                var result = await _output.Reader.ReadAsync();
                foreach (var segment in result.Buffer)
                    for (var left = segment; left.Length > 0;)
                        left = left[await _socket.SendAsync(left, SocketFlags.None)..];
                _output.Reader.AdvanceTo(result.Buffer.End);
                if (result.IsCompleted || result.IsCanceled) break;
            }
            _socket.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // the peer went away; the receive side reports it
        }
        await _output.Reader.CompleteAsync();
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        _output.Reader.CancelPendingRead();
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { }
    }

    public override async ValueTask DisposeAsync()
    {
        try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { }
        await _pumps;
        _socket.Dispose();
        _closed.Dispose();
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input => input;
        public PipeWriter Output => output;
    }
}
