namespace Engine.Onnx;

/// <summary>A VNNLIB file that cannot be parsed; <see cref="Line"/> and <see cref="Column"/> (1-based) locate the problem.</summary>
public sealed class VnnlibFormatException : FormatException
{
    /// <summary>Creates the exception; the message is prefixed with "source:line:column: ".</summary>
    public VnnlibFormatException(string problem, string source, int line, int column)
        : base($"{source}:{line}:{column}: {problem}")
    {
        Problem = problem; FileName = source; Line = line; Column = column;
    }

    /// <summary>What is wrong, without the location.</summary>
    public string Problem { get; }

    /// <summary>The file name (or "input" for a reader without one).</summary>
    public string FileName { get; }

    /// <summary>1-based line of the offending text.</summary>
    public int Line { get; }

    /// <summary>1-based column of the offending text.</summary>
    public int Column { get; }
}
