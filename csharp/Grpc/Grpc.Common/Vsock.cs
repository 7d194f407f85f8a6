using System.ComponentModel;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace GrpcBench;

/// <summary>
/// AF_VSOCK sockets through libc. .NET has no VSOCK endpoint type and Kestrel has no VSOCK
/// listener (aspnetcore issue 34050), so the server binds the socket here and hands Kestrel the
/// descriptor, and the client connects here and hands SocketsHttpHandler the stream.
/// </summary>
public static class Vsock
{
    private const int AfVsock = 40;
    private const int SockStream = 1, SockNonBlock = 0x800, SockCloexec = 0x80000;
    private const int EInProgress = 115;

    /// <summary>VMADDR_CID_ANY: listen on every context id this machine has.</summary>
    public const uint CidAny = uint.MaxValue;

    [StructLayout(LayoutKind.Sequential)]
    private struct SockaddrVm
    {
        public ushort Family;
        public ushort Reserved1;
        public uint Port;
        public uint Cid;
        public uint Zero;
    }

    [DllImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static extern int SysSocket(int domain, int type, int protocol);
    [DllImport("libc", EntryPoint = "bind", SetLastError = true)]
    private static extern int SysBind(int fd, ref SockaddrVm addr, int len);
    [DllImport("libc", EntryPoint = "listen", SetLastError = true)]
    private static extern int SysListen(int fd, int backlog);
    [DllImport("libc", EntryPoint = "connect", SetLastError = true)]
    private static extern int SysConnect(int fd, ref SockaddrVm addr, int len);
    [DllImport("libc", EntryPoint = "getsockname", SetLastError = true)]
    private static extern int SysGetSockName(int fd, ref SockaddrVm addr, ref int len);
    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int SysClose(int fd);

    /// <summary>Binds and listens; returns the descriptor and the port actually bound.</summary>
    public static (nint Fd, uint Port) Listen(uint cid, uint port, int backlog)
    {
        var fd = Open("vsock socket", 0);
        var addr = Address(cid, port);
        if (SysBind(fd, ref addr, Marshal.SizeOf<SockaddrVm>()) != 0) Fail(fd, $"cannot bind vsock {cid}:{port}");
        if (SysListen(fd, backlog) != 0) Fail(fd, $"cannot listen on vsock {cid}:{port}");
        var len = Marshal.SizeOf<SockaddrVm>();
        var bound = default(SockaddrVm);
        if (SysGetSockName(fd, ref bound, ref len) != 0) Fail(fd, "getsockname on vsock");
        return (fd, bound.Port);
    }

    /// <summary>Connects with a deadline (an unreachable CID can otherwise hang for seconds).</summary>
    public static async Task<Socket> ConnectAsync(uint cid, uint port, TimeSpan timeout, CancellationToken cancel)
    {
        var fd = Open("vsock socket", SockNonBlock);
        var addr = Address(cid, port);
        if (SysConnect(fd, ref addr, Marshal.SizeOf<SockaddrVm>()) != 0 && Marshal.GetLastPInvokeError() != EInProgress)
            Fail(fd, $"cannot connect to vsock {cid}:{port}");
        var socket = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        try
        {
            var deadline = DateTime.UtcNow + timeout;
            // Socket.Poll works on any descriptor; wait in short slices so cancellation is prompt.
            while (!socket.Poll(TimeSpan.FromMilliseconds(50), SelectMode.SelectWrite))
            {
                cancel.ThrowIfCancellationRequested();
                if (DateTime.UtcNow > deadline)
                    throw new SocketException((int)SocketError.TimedOut,
                        $"vsock {cid}:{port}: connect timed out after {timeout.TotalSeconds:0.#} s (is there a VSOCK route to CID {cid}?)");
                await Task.Yield();
            }
            var error = (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
            if (error != 0)
                throw new SocketException(error, $"vsock {cid}:{port}: {new Win32Exception(error).Message}");
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static SockaddrVm Address(uint cid, uint port) =>
        new() { Family = AfVsock, Port = port, Cid = cid };

    private static int Open(string what, int flags)
    {
        var fd = SysSocket(AfVsock, SockStream | SockCloexec | flags, 0);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new SocketException(errno, $"{what}: {new Win32Exception(errno).Message} (this machine has no VSOCK support)");
        }
        return fd;
    }

    private static void Fail(int fd, string what)
    {
        var errno = Marshal.GetLastPInvokeError();
        SysClose(fd);
        var hint = errno == 99 ? " (no such CID on this machine: there is no VSOCK route; try CID 'any' to listen)" : "";
        throw new SocketException(errno, $"{what}: {new Win32Exception(errno).Message}{hint}");
    }
}
