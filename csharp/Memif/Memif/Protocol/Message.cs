using System.Buffers.Binary;
using System.Text;

namespace Memif.Protocol;

public enum MessageType : ushort
{
    None = 0,
    Ack = 1,
    Hello = 2,
    Init = 3,
    AddRegion = 4,
    AddRing = 5,
    Connect = 6,
    Connected = 7,
    Disconnect = 8,
}

/// <summary>Protocol constants shared by DPDK, VPP and libmemif (memif.h, version 2.0).</summary>
public static class MemifConstants
{
    public const int MessageSize = 128;
    public const ushort Version = 0x0200;
    public const uint RingCookie = 0x03E31F20;
    public const int MaxLog2RingSize = 14;
    public const int SecretSize = 24;
    public const int NameSize = 32;
    public const int ReasonSize = 96;
    public const ushort AddRingFlagS2M = 1;
    public const ushort RingFlagMaskInt = 1;
    public const ushort DescFlagNext = 1;
    public const int RingHeaderSize = 128;
    public const int DescriptorSize = 16;
    public const int MaxRegions = 256;
    public const int MaxRingsPerDirection = 256;
}

/// <summary>
/// One 128-byte control message (memif_msg_t): u16 type at 0, body from offset 2, zero-filled.
/// Field offsets are the packed C layout from memif.h.
/// </summary>
public sealed class Message
{
    public readonly byte[] Bytes = new byte[MemifConstants.MessageSize];

    public MessageType Type
    {
        get => (MessageType)U16(0);
        set => SetU16(0, (ushort)value);
    }

    public ushort U16(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(Bytes.AsSpan(offset));
    public uint U32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(Bytes.AsSpan(offset));
    public ulong U64(int offset) => BinaryPrimitives.ReadUInt64LittleEndian(Bytes.AsSpan(offset));
    public void SetU16(int offset, ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(Bytes.AsSpan(offset), v);
    public void SetU32(int offset, uint v) => BinaryPrimitives.WriteUInt32LittleEndian(Bytes.AsSpan(offset), v);
    public void SetU64(int offset, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Bytes.AsSpan(offset), v);

    /// <summary>Reads a C string from a fixed field: stops at the first NUL or the field end.</summary>
    public string Str(int offset, int size)
    {
        var field = Bytes.AsSpan(offset, size);
        int nul = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul < 0 ? field : field[..nul]);
    }

    /// <summary>Writes at most size-1 bytes and a NUL, as every memif implementation expects.</summary>
    public void SetStr(int offset, int size, string? value)
    {
        var field = Bytes.AsSpan(offset, size);
        field.Clear();
        if (string.IsNullOrEmpty(value)) return;
        var bytes = Encoding.UTF8.GetBytes(value);
        bytes.AsSpan(0, Math.Min(bytes.Length, size - 1)).CopyTo(field);
    }

    public static Message Create(MessageType type) => new() { Type = type };

    // HELLO
    public static Message Hello(string name, ushort maxRegion, ushort maxM2S, ushort maxS2M, byte maxLog2)
    {
        var m = Create(MessageType.Hello);
        m.SetStr(2, MemifConstants.NameSize, name);
        m.SetU16(34, MemifConstants.Version);
        m.SetU16(36, MemifConstants.Version);
        m.SetU16(38, maxRegion);
        m.SetU16(40, maxM2S);
        m.SetU16(42, maxS2M);
        m.Bytes[44] = maxLog2;
        return m;
    }

    public string HelloName => Str(2, MemifConstants.NameSize);
    public ushort HelloMinVersion => U16(34);
    public ushort HelloMaxVersion => U16(36);
    public ushort HelloMaxRegion => U16(38);
    public ushort HelloMaxM2S => U16(40);
    public ushort HelloMaxS2M => U16(42);
    public byte HelloMaxLog2RingSize => Bytes[44];

    // INIT
    public static Message Init(uint id, string? secret, string name, ushort version = MemifConstants.Version, byte mode = 0)
    {
        var m = Create(MessageType.Init);
        m.SetU16(2, version);
        m.SetU32(4, id);
        m.Bytes[8] = mode;
        m.SetStr(9, MemifConstants.SecretSize, secret);
        m.SetStr(33, MemifConstants.NameSize, name);
        return m;
    }

    public ushort InitVersion => U16(2);
    public uint InitId => U32(4);
    public byte InitMode => Bytes[8];
    public ReadOnlySpan<byte> InitSecret => Bytes.AsSpan(9, MemifConstants.SecretSize);
    public string InitName => Str(33, MemifConstants.NameSize);

    // ADD_REGION
    public static Message AddRegion(ushort index, ulong size)
    {
        var m = Create(MessageType.AddRegion);
        m.SetU16(2, index);
        m.SetU64(4, size);
        return m;
    }

    public ushort RegionIndex => U16(2);
    public ulong RegionSize => U64(4);

    // ADD_RING
    public static Message AddRing(bool s2m, ushort index, ushort region, uint offset, byte log2Size, ushort privateHeaderSize = 0)
    {
        var m = Create(MessageType.AddRing);
        m.SetU16(2, s2m ? MemifConstants.AddRingFlagS2M : (ushort)0);
        m.SetU16(4, index);
        m.SetU16(6, region);
        m.SetU32(8, offset);
        m.Bytes[12] = log2Size;
        m.SetU16(13, privateHeaderSize);
        return m;
    }

    public bool RingIsS2M => (U16(2) & MemifConstants.AddRingFlagS2M) != 0;
    public ushort RingIndex => U16(4);
    public ushort RingRegion => U16(6);
    public uint RingOffset => U32(8);
    public byte RingLog2Size => Bytes[12];
    public ushort RingPrivateHeaderSize => U16(13);

    // CONNECT / CONNECTED
    public static Message Connect(MessageType type, string interfaceName)
    {
        var m = Create(type);
        m.SetStr(2, MemifConstants.NameSize, interfaceName);
        return m;
    }

    public string InterfaceName => Str(2, MemifConstants.NameSize);

    // DISCONNECT
    public static Message Disconnect(uint code, string reason)
    {
        var m = Create(MessageType.Disconnect);
        m.SetU32(2, code);
        m.SetStr(6, MemifConstants.ReasonSize, reason);
        return m;
    }

    public uint DisconnectCode => U32(2);
    public string DisconnectReason => Str(6, MemifConstants.ReasonSize);
}
