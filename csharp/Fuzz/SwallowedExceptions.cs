using System.Runtime.ExceptionServices;

namespace Fuzz;

/// <summary>
/// Watches every exception thrown in the process, caught or not, and keeps the first one that
/// is not a rejection, with the stack it was thrown from. For readers that end in a catch-all
/// (the HTTP/2 read loop turns any exception into a dead connection), a bug shows only here.
/// </summary>
sealed class SwallowedExceptions : IDisposable
{
    private readonly Func<Exception, bool> _isRejection;
    private (Exception Error, string ThrownAt)? _first;

    public SwallowedExceptions(Func<Exception, bool> isRejection)
    {
        _isRejection = isRejection;
        AppDomain.CurrentDomain.FirstChanceException += OnThrown;
    }

    private void OnThrown(object? sender, FirstChanceExceptionEventArgs e)
    {
        if (_isRejection(e.Exception)) return;
        lock (this) _first ??= (e.Exception, Environment.StackTrace);
    }

    /// <summary>Throws the first exception seen that was not a rejection, if any.</summary>
    public void ThrowFirst()
    {
        lock (this)
            if (_first is var (error, thrownAt))
                throw new SwallowedException(error, thrownAt);
    }

    public void Dispose() => AppDomain.CurrentDomain.FirstChanceException -= OnThrown;
}

/// <summary>An exception a catch-all swallowed: its type and message, and the stack it was thrown from.</summary>
sealed class SwallowedException(Exception error, string thrownAt)
    : Exception($"{error.GetType().FullName}: {error.Message}, thrown (and caught) at\n{thrownAt}", error);
