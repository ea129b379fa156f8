using System.Text;

namespace Engine.Onnx.VnnlibSyntax;

/// <summary>An s-expression: an atom (symbol or number token) or a parenthesised list, with its position.</summary>
internal sealed class SExpr
{
    public SExpr(string? atom, List<SExpr>? items, int line, int column)
    {
        Atom = atom; Items = items; Line = line; Column = column;
    }

    public string? Atom { get; }
    public List<SExpr>? Items { get; }
    public int Line { get; }
    public int Column { get; }

    public bool IsAtom => Atom != null;

    /// <summary>The head symbol of a list ("assert", "and", "&lt;=", ...), or null.</summary>
    public string? Head => Items is { Count: > 0 } l && l[0].IsAtom ? l[0].Atom : null;

    /// <summary>
    /// Reads every top-level expression. Iterative (no recursion), so deeply nested input cannot overflow the stack.
    /// ';' starts a comment to the end of the line; |quoted symbols| and "strings" are single atoms.
    /// </summary>
    public static List<SExpr> ReadAll(TextReader reader, string source)
    {
        var top = new List<SExpr>();
        var open = new Stack<(List<SExpr> items, int line, int col)>();
        int line = 1, col = 0;
        int c;
        int Next()
        {
            int ch = reader.Read();
            if (ch == '\n') { line++; col = 0; }
            else if (ch >= 0) col++;
            return ch;
        }
        void Add(SExpr e)
        {
            if (open.Count > 0) open.Peek().items.Add(e);
            else top.Add(e);
        }
        var sb = new StringBuilder();
        c = Next();
        while (c >= 0)
        {
            if (c == ';')
            {
                while (c >= 0 && c != '\n') c = Next();
                continue;
            }
            if (char.IsWhiteSpace((char)c)) { c = Next(); continue; }
            if (c == '(')
            {
                open.Push((new List<SExpr>(), line, col));
                c = Next();
                continue;
            }
            if (c == ')')
            {
                if (open.Count == 0) throw new VnnlibFormatException("unbalanced ')' with no matching '('", source, line, col);
                var (items, l0, c0) = open.Pop();
                Add(new SExpr(null, items, l0, c0));
                c = Next();
                continue;
            }
            int startLine = line, startCol = col;
            sb.Clear();
            if (c == '|' || c == '"')
            {
                int quote = c;
                c = Next();
                while (c >= 0 && c != quote) { sb.Append((char)c); c = Next(); }
                if (c < 0) throw new VnnlibFormatException($"unterminated {(quote == '|' ? "quoted symbol" : "string")}", source, startLine, startCol);
                c = Next();
                Add(new SExpr(quote == '"' ? "\"" + sb : sb.ToString(), null, startLine, startCol));
                continue;
            }
            while (c >= 0 && c != '(' && c != ')' && c != ';' && !char.IsWhiteSpace((char)c))
            {
                if (c < 0x20 || c > 0x7e) throw new VnnlibFormatException($"unexpected character U+{c:X4}", source, line, col);
                sb.Append((char)c);
                c = Next();
            }
            Add(new SExpr(sb.ToString(), null, startLine, startCol));
        }
        if (open.Count > 0)
        {
            var (_, l0, c0) = open.Peek();
            throw new VnnlibFormatException($"unbalanced '(' never closed ({open.Count} open at end of input)", source, l0, c0);
        }
        return top;
    }
}
