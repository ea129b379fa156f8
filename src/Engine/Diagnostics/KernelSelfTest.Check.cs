using System.Globalization;
using Engine.Tensors;

namespace Engine.Diagnostics;

public sealed partial class KernelSelfTest
{
    /// <summary>
    /// The state of one running check: its input generator, the buffers of the current case (released when the
    /// case ends), and the largest errors and first failure seen so far.
    /// </summary>
    internal sealed class Check
    {
        // Written around every payload: a kernel that writes outside its range changes it.
        private const float Sentinel = 31337.25f;
        // Payload offsets cycle through these (0: aligned; the rest misalign vector loads and test Buf.Offset).
        private static readonly int[] Offsets = [3, 0, 5, 1, 4];
        private const int Tail = 2;

        private readonly KernelSelfTest _t;
        private readonly List<Storage> _live = [];
        private int _allocs, _mismatches;
        private double _maxAbs, _maxRel;
        private string? _failure, _note, _label;
        private bool _failed;

        public Check(KernelSelfTest t, string name)
        {
            _t = t;
            Name = name;
            ulong h = 14695981039346656037UL;
            foreach (char ch in name) h = (h ^ ch) * 1099511628211UL;   // FNV-1a: stable across processes
            Rng = new Rng(t.Seed ^ h);
        }

        public string Name { get; }
        public Rng Rng { get; }
        public int Cases { get; private set; }
        public Device Device => _t.Device;
        public string CaseLabel => $"case {Cases} ({_label})";

        /// <summary>Starts the next case; <paramref name="label"/> names it in failure messages.</summary>
        public void Case(string label)
        {
            EndCase();
            Cases++;
            _label = label;
        }

        /// <summary>Releases the case's device buffers (CPU ones go to the GC).</summary>
        public void EndCase()
        {
            if (_t.Device != Tensors.Device.Cpu)
                foreach (var s in _live)
                {
                    try { s.Dispose(); }
                    catch (Exception e) { Fail($"{CaseLabel}: releasing a device buffer threw {Describe(e)}"); }
                }
            _live.Clear();
        }

        public void Note(string note) => _note ??= note;

        public void Fail(string message)
        {
            _failed = true;
            _failure ??= message;
        }

        public SelfTestResult Result()
            => new(Name, Cases, _maxAbs, _maxRel, !_failed, _failed && _mismatches > 1 ? $"{_failure} ({_mismatches} mismatching outputs in all)" : _failure ?? _note);

        // ------------------------------------------------------------ buffers

        /// <summary>An input holding <paramref name="data"/> on both sides.</summary>
        public Pair In(ReadOnlySpan<float> data) => Make(data, data.Length, nanPayload: false, deviceSide: true);

        /// <summary>An output of n elements, NaN before the kernel runs (an element it fails to write stays NaN).</summary>
        public Pair Out(int n) => Make([], n, nanPayload: true, deviceSide: true);

        /// <summary>An in-place output (y += ..., untouched elements) starting as <paramref name="init"/>.</summary>
        public Pair InOut(ReadOnlySpan<float> init) => Make(init, init.Length, nanPayload: false, deviceSide: true);

        /// <summary>A reference-side-only buffer (for values computed on the host, e.g. tolerance magnitudes).</summary>
        public Pair RefIn(ReadOnlySpan<float> data) => Make(data, data.Length, nanPayload: false, deviceSide: false);

        /// <summary>A reference-side-only output.</summary>
        public Pair RefOut(int n) => Make([], n, nanPayload: true, deviceSide: false);

        private Pair Make(ReadOnlySpan<float> data, int n, bool nanPayload, bool deviceSide)
        {
            int off = Offsets[_allocs++ % Offsets.Length];
            var host = new float[off + n + Tail];
            Array.Fill(host, Sentinel);
            if (nanPayload) host.AsSpan(off, n).Fill(float.NaN);
            else data.CopyTo(host.AsSpan(off));
            Storage? d = null;
            if (deviceSide)
            {
                d = _t.Device.Allocate(host.Length);
                _live.Add(d);
                _t.Device.CopyFromHost(host, d, 0);
            }
            var r = Tensors.Device.Cpu.Allocate(host.Length);
            Tensors.Device.Cpu.CopyFromHost(host, r, 0);
            return new Pair(d!, r, off, n);
        }

        /// <summary>The payload of one side (after the device's queued work finished).</summary>
        public float[] Payload(Pair p, Side s)
        {
            var full = Full(p, s);
            return full.AsSpan(p.Offset, p.Length).ToArray();
        }

        private float[] Full(Pair p, Side s)
        {
            var host = new float[p.Offset + p.Length + Tail];
            if (s == Side.Device)
            {
                _t.Device.Synchronize();
                _t.Device.CopyToHost(p.D, 0, host);
            }
            else Tensors.Device.Cpu.CopyToHost(p.R, 0, host);
            return host;
        }

        // ------------------------------------------------------------ running kernels

        /// <summary>Runs <paramref name="call"/> with the device's kernels on device buffers, then with the reference's.</summary>
        public void Run(Action<IKernels, Side> call)
        {
            call(_t.Device.Kernels, Side.Device);
            RunReference(call);
        }

        /// <summary>Runs <paramref name="call"/> on the reference side only (inputs derived from a reference result).</summary>
        public void RunReference(Action<IKernels, Side> call)
        {
            try { call(_t.ReferenceKernels, Side.Reference); }
            catch (Exception e) { throw new InvalidOperationException($"the reference threw (a harness or CPU bug): {Describe(e)}", e); }
        }

        /// <summary>Both sides must throw an exception of type <typeparamref name="TException"/> (e.g. for an invalid label).</summary>
        public void ExpectThrows<TException>(Action<IKernels, Side> call, string what) where TException : Exception
        {
            foreach (var s in new[] { Side.Reference, Side.Device })
            {
                var k = s == Side.Device ? _t.Device.Kernels : _t.ReferenceKernels;
                try
                {
                    call(k, s);
                    _t.Device.Synchronize();
                }
                catch (TException) { continue; }
                catch (Exception e)
                {
                    Fail($"{CaseLabel}: {what}: the {(s == Side.Device ? "device" : "reference")} threw {Describe(e)}, expected {typeof(TException).Name}");
                    _mismatches++;
                    continue;
                }
                Fail($"{CaseLabel}: {what}: the {(s == Side.Device ? "device" : "reference")} did not throw {typeof(TException).Name}");
                _mismatches++;
            }
        }

        // ------------------------------------------------------------ comparing

        /// <summary>
        /// Compares the whole storage of <paramref name="p"/> on both sides: the payload within <paramref name="tol"/>
        /// (<paramref name="mag"/>: per-element magnitudes for <see cref="Tol.Scale"/>), the margins bit for bit.
        /// </summary>
        public void Compare(string what, Pair p, Tol tol, float[]? mag = null)
        {
            var d = Full(p, Side.Device);
            var r = Full(p, Side.Reference);
            for (int i = 0; i < d.Length; i++)
            {
                if (i >= p.Offset && i < p.Offset + p.Length) continue;
                if (BitConverter.SingleToInt32Bits(d[i]) == BitConverter.SingleToInt32Bits(r[i])) continue;
                int rel = i - p.Offset;
                Fail($"{CaseLabel} {what}: element {rel} (outside the {p.Length} written) changed: device {F(d[i])}, expected {F(r[i])}");
                _mismatches++;
                return;
            }
            CompareValues(what, d.AsSpan(p.Offset, p.Length), r.AsSpan(p.Offset, p.Length), tol, mag);
        }

        /// <summary>Compares one scalar result (e.g. a sum of squares).</summary>
        public void CompareScalar(string what, double device, double reference, Tol tol, double mag = 0)
            => CompareValues(what, [(float)device], [(float)reference], tol, tol.Scale > 0 ? [(float)mag] : null, device, reference);

        /// <summary>Compares host arrays (end-to-end results read back from tensors).</summary>
        public void CompareValues(string what, ReadOnlySpan<float> d, ReadOnlySpan<float> r, Tol tol, float[]? mag = null,
                                  double? exactDevice = null, double? exactReference = null)
        {
            if (d.Length != r.Length)
            {
                Fail($"{CaseLabel} {what}: device gave {d.Length} values, reference {r.Length}");
                _mismatches++;
                return;
            }
            double maxRef = 0;
            foreach (var v in r) if (float.IsFinite(v)) maxRef = Math.Max(maxRef, Math.Abs(v));
            int bad = 0, first = -1;
            for (int i = 0; i < d.Length; i++)
            {
                double dv = exactDevice ?? d[i], rv = exactReference ?? r[i];
                double err;
                bool ok;
                if (tol.Bitwise && !(float.IsNaN(d[i]) && float.IsNaN(r[i])))
                {
                    ok = BitConverter.SingleToInt32Bits(d[i]) == BitConverter.SingleToInt32Bits(r[i]);
                    err = ok ? 0 : double.IsFinite(dv - rv) ? Math.Abs(dv - rv) : double.PositiveInfinity;
                }
                else if (double.IsNaN(dv) || double.IsNaN(rv)) { ok = double.IsNaN(dv) && double.IsNaN(rv); err = ok ? 0 : double.PositiveInfinity; }
                else if (double.IsInfinity(dv) || double.IsInfinity(rv)) { ok = dv == rv; err = ok ? 0 : double.PositiveInfinity; }
                else
                {
                    err = Math.Abs(dv - rv);
                    double m = mag != null ? mag[i] : maxRef;
                    ok = err <= tol.Abs + tol.Rel * Math.Abs(rv) + tol.Scale * m;
                }
                if (err > 0)
                {
                    _maxAbs = Math.Max(_maxAbs, err);
                    _maxRel = Math.Max(_maxRel, err / Math.Max(Math.Max(Math.Abs(rv), 1e-3 * maxRef), 1e-30));
                }
                if (!ok && bad++ == 0) first = i;
            }
            if (bad == 0) return;
            _mismatches++;
            double fd = exactDevice ?? d[first], fr = exactReference ?? r[first];
            Fail($"{CaseLabel} {what}[{first}]: device {F(fd)} vs reference {F(fr)}; {bad} of {d.Length} elements outside tolerance");
        }

        private static string F(double v) => v.ToString("G9", CultureInfo.InvariantCulture);

        // ------------------------------------------------------------ inputs

        /// <summary>n values uniform in [lo, hi).</summary>
        public float[] U(int n, float lo = -1f, float hi = 1f)
        {
            var a = new float[n];
            for (int i = 0; i < n; i++) a[i] = Rng.Uniform(lo, hi);
            return a;
        }

        /// <summary>n integers in [lo, hi], as floats (ties for max / argmax / comparisons).</summary>
        public float[] Ints(int n, int lo, int hi)
        {
            var a = new float[n];
            for (int i = 0; i < n; i++) a[i] = Rng.Next(lo, hi + 1);
            return a;
        }

        /// <summary>Overwrites a few random positions of <paramref name="a"/> with <paramref name="specials"/> (each once while they fit).</summary>
        public float[] Sprinkle(float[] a, params float[] specials)
        {
            if (a.Length == 0) return a;
            foreach (var s in specials) a[Rng.Next(0, a.Length)] = s;
            return a;
        }

        public static float[] Abs(float[] a) => a.Select(MathF.Abs).ToArray();
    }
}
