using System.Globalization;
using System.Text.RegularExpressions;
using Engine.Onnx.VnnlibSyntax;

namespace Engine.Onnx;

/// <summary>
/// Parser for VNNLIB property files (the SMT-LIB subset used by VNN-COMP): <c>(declare-const X_i Real)</c> and
/// <c>(declare-const Y_j Real)</c> (or <c>declare-fun</c> with no arguments), and <c>(assert F)</c> where F nests
/// <c>and</c>, <c>or</c> and comparisons <c>&lt;=</c>, <c>&gt;=</c>, <c>&lt;</c>, <c>&gt;</c>, <c>=</c> between linear
/// terms built from numbers (decimal or scientific, optionally signed), variables, <c>+</c>, <c>-</c>, <c>*</c> (by a
/// constant) and <c>/</c> (by a constant). Comments start with ';'. <c>set-logic</c>, <c>set-info</c>,
/// <c>set-option</c>, <c>check-sat</c>, <c>get-model</c> and <c>exit</c> are accepted and ignored.
/// The asserts together, in disjunctive normal form, give one input box and one output conjunction per term;
/// inside a term, input constraints must each bound a single X_i (else <see cref="NotSupportedException"/>), and a
/// constraint may not mix X and Y variables. Strict inequalities are read as non-strict. A term whose box is
/// empty or whose constant constraints are false is unsatisfiable and dropped. Malformed text raises
/// <see cref="VnnlibFormatException"/> with the line and column.
/// </summary>
public static partial class Vnnlib
{
    /// <summary>Above this many disjunctive-normal-form terms the property is refused rather than expanded.</summary>
    public const int MaxTerms = 100_000;

    private const int MaxDepth = 256;

    /// <summary>Parses a VNNLIB file; <paramref name="numInputs"/> / <paramref name="numOutputs"/>, when given, must match the declarations.</summary>
    public static VnnlibProperty Parse(string path, int? numInputs = null, int? numOutputs = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var reader = new StreamReader(path);
        return Parse(reader, numInputs, numOutputs, Path.GetFileName(path));
    }

    /// <summary>Parses VNNLIB text from a reader; <paramref name="sourceName"/> names it in error messages.</summary>
    public static VnnlibProperty Parse(TextReader reader, int? numInputs = null, int? numOutputs = null, string sourceName = "input")
    {
        ArgumentNullException.ThrowIfNull(reader);
        var exprs = SExpr.ReadAll(reader, sourceName);
        return new Parser(sourceName).Run(exprs, numInputs, numOutputs);
    }

    [GeneratedRegex(@"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$")]
    private static partial Regex NumberPattern();

    [GeneratedRegex(@"^([XY])_(0|[1-9][0-9]{0,8})$")]
    private static partial Regex VariablePattern();

    /// <summary>A linear constraint sum(coef_v · v) &lt;= rhs, over inputs or outputs only.</summary>
    private sealed record Atom(bool IsOutput, Dictionary<int, double> Coefs, double Rhs, SExpr At);

    /// <summary>A linear term: coefficients of X_i (key i) and Y_j (key -1 - j), plus a constant.</summary>
    private sealed class Linear
    {
        public Dictionary<int, double> Coefs { get; } = [];
        public double Constant { get; set; }

        public static Linear Of(double c) => new() { Constant = c };

        public Linear Scaled(double s)
        {
            var r = Of(Constant * s);
            foreach (var (k, v) in Coefs) r.Coefs[k] = v * s;
            return r;
        }

        public void AddScaled(Linear other, double s)
        {
            Constant += other.Constant * s;
            foreach (var (k, v) in other.Coefs) Coefs[k] = Coefs.GetValueOrDefault(k) + v * s;
        }
    }

    private sealed class Parser(string source)
    {
        private readonly Dictionary<string, SExpr> _declared = new(StringComparer.Ordinal);
        private int _inputs, _outputs;

        private VnnlibFormatException Error(SExpr at, string problem) => new(problem, source, at.Line, at.Column);

        private NotSupportedException Unsupported(SExpr at, string problem) => new($"{source}:{at.Line}:{at.Column}: {problem}");

        public VnnlibProperty Run(List<SExpr> exprs, int? numInputs, int? numOutputs)
        {
            var asserts = new List<SExpr>();
            foreach (var e in exprs)
            {
                if (e.IsAtom) throw Error(e, $"expected a command in parentheses, found '{e.Atom}'");
                switch (e.Head)
                {
                    case "declare-const": Declare(e, 3, 2); break;
                    case "declare-fun":
                        if (e.Items!.Count != 4 || e.Items[2].Items is not { Count: 0 })
                            throw Error(e, "declare-fun must read (declare-fun NAME () Real)");
                        Declare(e, 4, 3);
                        break;
                    case "assert":
                        if (e.Items!.Count != 2) throw Error(e, "assert takes exactly one formula");
                        asserts.Add(e.Items[1]);
                        break;
                    case "set-logic" or "set-info" or "set-option" or "check-sat" or "get-model" or "exit": break;
                    case null: throw Error(e, "expected a command, found an empty or nested list");
                    default: throw Error(e, $"unknown command '{e.Head}'");
                }
            }
            CheckDeclarations(numInputs, numOutputs, exprs.Count > 0 ? exprs[^1] : new SExpr(null, [], 1, 1));

            // Asserts with a single DNF term apply to every term; the others multiply out.
            var global = new List<Atom>();
            var terms = new List<List<Atom>> { new() };
            foreach (var a in asserts)
            {
                var dnf = Formula(a, 0);
                if (dnf.Count == 1) { global.AddRange(dnf[0]); continue; }
                if ((long)terms.Count * dnf.Count > MaxTerms)
                    throw Unsupported(a, $"the formula expands to more than {MaxTerms} disjunctive-normal-form terms");
                terms = terms.SelectMany(t => dnf.Select(d => (List<Atom>)[.. t, .. d])).ToList();
            }
            return Build(global, terms);
        }

        private void Declare(SExpr e, int count, int typeAt)
        {
            var items = e.Items!;
            if (items.Count != count || !items[1].IsAtom || !items[typeAt].IsAtom)
                throw Error(e, $"{e.Head} must read ({e.Head} NAME{(count == 4 ? " ()" : "")} Real)");
            string name = items[1].Atom!;
            if (items[typeAt].Atom != "Real") throw Error(items[typeAt], $"variable '{name}' has type '{items[typeAt].Atom}'; only Real is supported");
            var m = VariablePattern().Match(name);
            if (!m.Success) throw Error(items[1], $"variable '{name}' is neither an input X_i nor an output Y_j");
            if (!_declared.TryAdd(name, items[1])) throw Error(items[1], $"variable '{name}' is declared twice");
            int idx = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            if (m.Groups[1].Value == "X") _inputs = Math.Max(_inputs, idx + 1);
            else _outputs = Math.Max(_outputs, idx + 1);
        }

        private void CheckDeclarations(int? numInputs, int? numOutputs, SExpr end)
        {
            foreach (var (prefix, n, what) in new[] { ("X", _inputs, "inputs"), ("Y", _outputs, "outputs") })
            {
                if (n == 0) throw Error(end, $"no {what} are declared (expected (declare-const {prefix}_0 Real) ...)");
                for (int i = 0; i < n; i++)
                    if (!_declared.ContainsKey($"{prefix}_{i}"))
                        throw Error(_declared[$"{prefix}_{n - 1}"], $"{what} {prefix}_0..{prefix}_{n - 1} are declared except {prefix}_{i}");
            }
            if (numInputs is { } ni && ni != _inputs)
                throw Error(_declared[$"X_{_inputs - 1}"], $"the file declares {_inputs} inputs, expected {ni}");
            if (numOutputs is { } no && no != _outputs)
                throw Error(_declared[$"Y_{_outputs - 1}"], $"the file declares {_outputs} outputs, expected {no}");
        }

        /// <summary>The formula in disjunctive normal form: a list of terms, each a conjunction of atoms.</summary>
        private List<List<Atom>> Formula(SExpr f, int depth)
        {
            if (depth > MaxDepth) throw Error(f, "formula nested too deeply");
            if (f.IsAtom)
                return f.Atom switch
                {
                    "true" => [[]],
                    "false" => [],
                    _ => throw Error(f, $"expected a formula, found '{f.Atom}'"),
                };
            var items = f.Items!;
            switch (f.Head)
            {
                case "and":
                {
                    var acc = new List<List<Atom>> { new() };
                    foreach (var sub in items.Skip(1))
                    {
                        var d = Formula(sub, depth + 1);
                        if ((long)acc.Count * d.Count > MaxTerms)
                            throw Unsupported(f, $"the formula expands to more than {MaxTerms} disjunctive-normal-form terms");
                        acc = d.Count == 1 ? acc.Select(t => (List<Atom>)[.. t, .. d[0]]).ToList()
                            : acc.SelectMany(t => d.Select(x => (List<Atom>)[.. t, .. x])).ToList();
                    }
                    return acc;
                }
                case "or":
                {
                    var acc = new List<List<Atom>>();
                    foreach (var sub in items.Skip(1))
                    {
                        acc.AddRange(Formula(sub, depth + 1));
                        if (acc.Count > MaxTerms) throw Unsupported(f, $"the formula expands to more than {MaxTerms} disjunctive-normal-form terms");
                    }
                    return acc;
                }
                case "<=" or "<" or ">=" or ">" or "=":
                {
                    if (items.Count < 3) throw Error(f, $"'{f.Head}' needs at least two terms");
                    var terms = items.Skip(1).Select(t => Term(t, depth + 1)).ToArray();
                    var atoms = new List<Atom>();
                    for (int i = 0; i + 1 < terms.Length; i++)
                    {
                        var (lo, hi) = f.Head is ">=" or ">" ? (terms[i + 1], terms[i]) : (terms[i], terms[i + 1]);
                        atoms.Add(MakeAtom(lo, hi, items[i + 1]));
                        if (f.Head == "=") atoms.Add(MakeAtom(hi, lo, items[i + 1]));
                    }
                    return [atoms];
                }
                case "not" or "=>" or "xor" or "ite" or "distinct":
                    throw Unsupported(f, $"'{f.Head}' is not supported in VNNLIB properties (use and / or of comparisons)");
                case null: throw Error(f, "expected a formula, found an empty or nested list");
                default: throw Error(f, $"unknown formula operator '{f.Head}'");
            }
        }

        /// <summary>lo &lt;= hi as (lo - hi) &lt;= 0.</summary>
        private Atom MakeAtom(Linear lo, Linear hi, SExpr at)
        {
            var diff = Linear.Of(0);
            diff.AddScaled(lo, 1);
            diff.AddScaled(hi, -1);
            var coefs = diff.Coefs.Where(kv => kv.Value != 0).ToDictionary(kv => kv.Key, kv => kv.Value);
            bool hasX = coefs.Keys.Any(k => k >= 0), hasY = coefs.Keys.Any(k => k < 0);
            if (hasX && hasY) throw Unsupported(at, "a constraint mixes inputs X and outputs Y; only input boxes and output constraints are supported");
            if (!double.IsFinite(diff.Constant) || coefs.Values.Any(v => !double.IsFinite(v)))
                throw Error(at, "the constraint's coefficients overflow");
            return new Atom(hasY, coefs, -diff.Constant, at);
        }

        private Linear Term(SExpr t, int depth)
        {
            if (depth > MaxDepth) throw Error(t, "term nested too deeply");
            if (t.IsAtom) return AtomTerm(t);
            var items = t.Items!;
            string op = t.Head ?? throw Error(t, "expected a term, found an empty or nested list");
            var args = items.Skip(1).Select(a => Term(a, depth + 1)).ToArray();
            switch (op)
            {
                case "+":
                {
                    if (args.Length == 0) throw Error(t, "'+' needs at least one term");
                    var r = Linear.Of(0);
                    foreach (var a in args) r.AddScaled(a, 1);
                    return r;
                }
                case "-":
                {
                    if (args.Length == 0) throw Error(t, "'-' needs at least one term");
                    if (args.Length == 1) return args[0].Scaled(-1);
                    var r = Linear.Of(0);
                    r.AddScaled(args[0], 1);
                    foreach (var a in args.Skip(1)) r.AddScaled(a, -1);
                    return r;
                }
                case "*":
                {
                    if (args.Length == 0) throw Error(t, "'*' needs at least one term");
                    var variable = args.Where(a => a.Coefs.Count > 0).ToArray();
                    if (variable.Length > 1) throw Unsupported(t, "a product of variables is not linear");
                    double k = args.Where(a => a.Coefs.Count == 0).Aggregate(1.0, (p, a) => p * a.Constant);
                    return variable.Length == 1 ? variable[0].Scaled(k) : Linear.Of(k);
                }
                case "/":
                {
                    if (args.Length < 2) throw Error(t, "'/' needs at least two terms");
                    if (args.Skip(1).Any(a => a.Coefs.Count > 0)) throw Unsupported(t, "division by a variable is not linear");
                    double d = args.Skip(1).Aggregate(1.0, (p, a) => p * a.Constant);
                    if (d == 0) throw Error(t, "division by zero");
                    return args[0].Scaled(1 / d);
                }
                default:
                    throw Error(t, $"unknown term operator '{op}'");
            }
        }

        private Linear AtomTerm(SExpr t)
        {
            string s = t.Atom!;
            char c0 = s.Length > 0 ? s[0] : ' ';
            bool numberLike = char.IsAsciiDigit(c0) || c0 == '.' || ((c0 == '-' || c0 == '+') && s.Length > 1 && (char.IsAsciiDigit(s[1]) || s[1] == '.'));
            if (numberLike)
            {
                if (!NumberPattern().IsMatch(s) || !double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
                    throw Error(t, $"bad number '{s}'");
                if (!double.IsFinite(v)) throw Error(t, $"number '{s}' is out of range");
                return Linear.Of(v);
            }
            if (!_declared.ContainsKey(s)) throw Error(t, $"unknown variable '{s}' (declare it with declare-const)");
            var m = VariablePattern().Match(s);
            int idx = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
            var r = Linear.Of(0);
            r.Coefs[m.Groups[1].Value == "X" ? idx : -1 - idx] = 1;
            return r;
        }

        private VnnlibProperty Build(List<Atom> global, List<List<Atom>> terms)
        {
            var lo0 = new double[_inputs];
            var hi0 = new double[_inputs];
            Array.Fill(lo0, double.NegativeInfinity);
            Array.Fill(hi0, double.PositiveInfinity);
            var globalOut = new List<Atom>();
            if (!Apply(global, lo0, hi0, globalOut)) return new VnnlibProperty(_inputs, _outputs, []);

            var cases = new List<(double[] lo, double[] hi, List<VnnlibConstraints> unsafeSet)>();
            foreach (var term in terms)
            {
                var lo = (double[])lo0.Clone();
                var hi = (double[])hi0.Clone();
                var outs = new List<Atom>(globalOut);
                if (!Apply(term, lo, hi, outs)) continue;
                for (int i = 0; i < _inputs; i++)
                {
                    if (double.IsNegativeInfinity(lo[i])) throw Error(_declared[$"X_{i}"], $"input X_{i} has no lower bound");
                    if (double.IsPositiveInfinity(hi[i])) throw Error(_declared[$"X_{i}"], $"input X_{i} has no upper bound");
                }
                if (Enumerable.Range(0, _inputs).Any(i => lo[i] > hi[i])) continue;
                var constraints = Constraints(outs);
                var existing = cases.FindIndex(c => c.lo.AsSpan().SequenceEqual(lo) && c.hi.AsSpan().SequenceEqual(hi));
                if (existing >= 0) cases[existing].unsafeSet.Add(constraints);
                else cases.Add((lo, hi, [constraints]));
            }
            return new VnnlibProperty(_inputs, _outputs, cases.Select(c => new VnnlibCase(c.lo, c.hi, [.. c.unsafeSet])).ToArray());
        }

        /// <summary>Tightens the box with the input atoms and collects the output atoms; false when a constant atom is false.</summary>
        private bool Apply(List<Atom> atoms, double[] lo, double[] hi, List<Atom> outputs)
        {
            foreach (var a in atoms)
            {
                if (a.Coefs.Count == 0)
                {
                    if (!(0 <= a.Rhs)) return false;
                    continue;
                }
                if (a.IsOutput) { outputs.Add(a); continue; }
                if (a.Coefs.Count > 1)
                    throw Unsupported(a.At, "an input constraint involves several inputs; only bounds on single inputs (a box) are supported");
                var (i, k) = a.Coefs.First();
                double bound = a.Rhs / k;
                if (k > 0) hi[i] = Math.Min(hi[i], bound);
                else lo[i] = Math.Max(lo[i], bound);
            }
            return true;
        }

        private VnnlibConstraints Constraints(List<Atom> atoms)
        {
            var c = new double[atoms.Count, _outputs];
            var d = new double[atoms.Count];
            for (int r = 0; r < atoms.Count; r++)
            {
                foreach (var (k, v) in atoms[r].Coefs) c[r, -1 - k] = v;
                d[r] = atoms[r].Rhs;
            }
            return new VnnlibConstraints(c, d);
        }
    }
}
