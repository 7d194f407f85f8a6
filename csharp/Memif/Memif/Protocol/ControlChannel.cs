using Memif.Native;

namespace Memif.Protocol;

public enum ReceiveStatus
{
    /// <summary>A datagram arrived (check <see cref="Received.Length"/>: only 128 is valid).</summary>
    Message,
    Timeout,
    /// <summary>The peer closed the socket (EOF) or it failed.</summary>
    Closed,
}

/// <summary>What one recvmsg produced. <see cref="Fd"/> is owned by the receiver once returned.</summary>
public readonly record struct Received(ReceiveStatus Status, Message? Message, int Length, int Fd, bool TooManyFds);

/// <summary>
/// One memif control connection: an AF_UNIX SOCK_SEQPACKET socket carrying 128-byte messages,
/// with at most one file descriptor riding along in SCM_RIGHTS. The socket is non-blocking and
/// every wait goes through poll, so a silent peer can only cost us a timeout.
/// </summary>
public sealed unsafe class ControlChannel : IDisposable
{
    // Room for credentials (SO_PASSCRED peers) and a handful of fds: a hostile peer sending more
    // than one fd must not make the kernel truncate silently, we want to see and close them all.
    private const int ControlBufferSize = 256;
    private int _fd;

    public ControlChannel(int fd) => _fd = fd;

    public int Fd => _fd;
    public bool IsOpen => _fd >= 0;

    public bool Send(Message message, int fd = -1)
    {
        if (_fd < 0) return false;
        byte* control = stackalloc byte[Libc.CmsgSpace(sizeof(int))];
        fixed (byte* data = message.Bytes)
        {
            var iov = new Libc.IoVec { Base = data, Length = MemifConstants.MessageSize };
            var hdr = new Libc.MsgHdr { Iov = &iov, IovLength = 1 };
            if (fd >= 0)
            {
                int space = Libc.CmsgSpace(sizeof(int));
                new Span<byte>(control, space).Clear();
                *(ulong*)control = (ulong)(Libc.CmsgHeaderSize + sizeof(int)); // cmsg_len = CMSG_LEN(4)
                *(int*)(control + 8) = Libc.SOL_SOCKET;
                *(int*)(control + 12) = Libc.SCM_RIGHTS;
                *(int*)(control + Libc.CmsgHeaderSize) = fd;
                hdr.Control = control;
                hdr.ControlLength = (nuint)space;
            }
            nint sent;
            do sent = Libc.sendmsg(_fd, &hdr, Libc.MSG_NOSIGNAL | Libc.MSG_DONTWAIT);
            while (sent < 0 && Libc.LastError == Libc.EINTR);
            return sent == MemifConstants.MessageSize;
        }
    }

    /// <summary>Sends any bytes with any fds: only tests use this, to play a misbehaving peer.</summary>
    internal bool SendRaw(ReadOnlySpan<byte> bytes, ReadOnlySpan<int> fds)
    {
        int space = Libc.CmsgSpace(fds.Length * sizeof(int));
        byte* control = stackalloc byte[space];
        new Span<byte>(control, space).Clear();
        fixed (byte* data = bytes)
        {
            var iov = new Libc.IoVec { Base = data, Length = (nuint)bytes.Length };
            var hdr = new Libc.MsgHdr { Iov = &iov, IovLength = 1 };
            if (fds.Length > 0)
            {
                *(ulong*)control = (ulong)(Libc.CmsgHeaderSize + fds.Length * sizeof(int));
                *(int*)(control + 8) = Libc.SOL_SOCKET;
                *(int*)(control + 12) = Libc.SCM_RIGHTS;
                for (int i = 0; i < fds.Length; i++) *(int*)(control + Libc.CmsgHeaderSize + i * sizeof(int)) = fds[i];
                hdr.Control = control;
                hdr.ControlLength = (nuint)space;
            }
            return Libc.sendmsg(_fd, &hdr, Libc.MSG_NOSIGNAL | Libc.MSG_DONTWAIT) == bytes.Length;
        }
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> (-1 = forever, 0 = just look) for one datagram.</summary>
    public Received Receive(int timeoutMs)
    {
        if (_fd < 0) return new Received(ReceiveStatus.Closed, null, 0, -1, false);
        if (!WaitReadable(_fd, timeoutMs)) return new Received(ReceiveStatus.Timeout, null, 0, -1, false);

        var message = new Message();
        // One spare byte beyond 128 plus MSG_TRUNC tells an oversized datagram from an exact one.
        byte* data = stackalloc byte[MemifConstants.MessageSize + 1];
        byte* control = stackalloc byte[ControlBufferSize];
        var iov = new Libc.IoVec { Base = data, Length = MemifConstants.MessageSize + 1 };
        var hdr = new Libc.MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = ControlBufferSize };
        nint n;
        do n = Libc.recvmsg(_fd, &hdr, Libc.MSG_DONTWAIT | Libc.MSG_CMSG_CLOEXEC);
        while (n < 0 && Libc.LastError == Libc.EINTR);
        if (n < 0 && Libc.LastError == Libc.EAGAIN) return new Received(ReceiveStatus.Timeout, null, 0, -1, false);
        if (n < 0) return new Received(ReceiveStatus.Closed, null, 0, -1, false);

        int fd = -1;
        bool tooMany = (hdr.Flags & Libc.MSG_CTRUNC) != 0;
        // Walk every cmsg: keep the first fd, close any others so nothing leaks.
        nuint offset = 0;
        while (offset + Libc.CmsgHeaderSize <= hdr.ControlLength)
        {
            byte* cmsg = control + offset;
            ulong len = *(ulong*)cmsg;
            if (len < Libc.CmsgHeaderSize || offset + (nuint)len > hdr.ControlLength) break;
            if (*(int*)(cmsg + 8) == Libc.SOL_SOCKET && *(int*)(cmsg + 12) == Libc.SCM_RIGHTS)
            {
                int count = (int)((len - Libc.CmsgHeaderSize) / sizeof(int));
                for (int i = 0; i < count; i++)
                {
                    int received = *(int*)(cmsg + Libc.CmsgHeaderSize + i * sizeof(int));
                    if (fd < 0) fd = received;
                    else
                    {
                        Libc.close(received);
                        tooMany = true;
                    }
                }
            }
            offset += (nuint)((len + 7) & ~7UL);
        }

        if (n == 0)
        {
            // 0 is the end of the stream, or an empty datagram: only a datagram carries descriptors,
            // and those the kernel has installed already. Close them; the size is then invalid.
            if (fd < 0) return new Received(ReceiveStatus.Closed, null, 0, -1, false);
            Libc.close(fd);
            return new Received(ReceiveStatus.Message, message, 0, -1, tooMany);
        }

        int length = (hdr.Flags & Libc.MSG_TRUNC) != 0 ? MemifConstants.MessageSize + 1 : (int)n;
        new ReadOnlySpan<byte>(data, Math.Min(length, MemifConstants.MessageSize)).CopyTo(message.Bytes);
        return new Received(ReceiveStatus.Message, message, length, fd, tooMany);
    }

    public static bool WaitReadable(int fd, int timeoutMs)
    {
        var pfd = new Libc.PollFd { Fd = fd, Events = Libc.POLLIN };
        int rc;
        do rc = Libc.poll(&pfd, 1, timeoutMs);
        while (rc < 0 && Libc.LastError == Libc.EINTR);
        return rc > 0;
    }

    /// <summary>Sends DISCONNECT with a reason (best effort) and closes the socket.</summary>
    public void Disconnect(string reason)
    {
        Send(Message.Disconnect(0, reason));
        Dispose();
    }

    public void Dispose() => Libc.CloseQuietly(ref _fd);
}
