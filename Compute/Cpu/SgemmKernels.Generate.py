"""Generates SgemmKernels.Generated.cs: the register-blocked SGEMM micro-kernels (run: python3 SgemmKernels.Generate.py > SgemmKernels.Generated.cs)."""
import sys
def prologue(w, vec, MR, NRV, NR, create_zero, full_lines):
    """Zeroed accumulators, the full-tile flag and the prefetch of C's rows."""
    accs=[f"c{r}{v}" for r in range(MR) for v in range(NRV)]
    w(f"            {vec}<float> " + ", ".join(f"{x} = {create_zero}" for x in accs) + ";")
    for line in full_lines:
        w(f"            {line}")
    w(f"            if (full && Sse.IsSupported)")
    w("            {")
    for r in range(MR):
        w(f"                Sse.Prefetch0(c + {r} * ldc); Sse.Prefetch0(c + {r} * ldc + {NR-1});")
    w("            }")

def k_loop(w, lanes, MR, NRV, NR, unroll, fma, load, bcast, a_at, advance_unrolled, advance_one):
    """The k loop, unrolled, and its tail; a_at(r, u) is the expression of A's row r at unrolled step u."""
    w("            int p = 0;")
    def step(u, ind):
        for v in range(NRV):
            w(f"{ind}var b{v} = {load}(b + {u*NR + v*lanes});")
        for r in range(MR):
            w(f"{ind}var a{r} = {bcast}({a_at(r, u)});")
            for v in range(NRV):
                w(f"{ind}c{r}{v} = {fma}(a{r}, b{v}, c{r}{v});")
    w(f"            for (; p + {unroll} <= kc; p += {unroll})")
    w("            {")
    for u in range(unroll):
        w("                {")
        step(u, "                    ")
        w("                }")
    w(f"                {advance_unrolled}")
    w("            }")
    w("            for (; p < kc; p++)")
    w("            {")
    step(0, "                ")
    w(f"                {advance_one}")
    w("            }")

def kernel(name, vec, lanes, MR, NRV, unroll, fma, load, bcast, create_zero, doc):
    NR = NRV*lanes
    L=[]
    w=L.append
    w(f"    /// <summary>{doc}</summary>")
    w(f"    internal static class {name}")
    w("    {")
    w(f"        public const int MR = {MR}, NR = {NR};")
    w("")
    w("        /// <summary>")
    w(f"        /// C[0..mr, 0..nr] = α·(A panel · B panel) + β·C (β = 0: C is not read). <paramref name=\"a\"/>: kc×{MR}")
    w(f"        /// (k-major, {MR} rows per k), <paramref name=\"b\"/>: kc×{NR} (k-major), both 64-byte aligned and zero-padded.")
    w(f"        /// Full tiles update C directly; ragged ones go through <paramref name=\"tile\"/> ({MR}×{NR} floats).")
    w("        /// </summary>")
    w("        [MethodImpl(MethodImplOptions.AggressiveOptimization)]")
    w("        public static void Run(int kc, float* a, float* b, float* c, long ldc, float alpha, float beta, int mr, int nr, float* tile)")
    w("        {")
    prologue(w, vec, MR, NRV, NR, create_zero, ["bool full = mr == MR && nr == NR;"])
    k_loop(w, lanes, MR, NRV, NR, unroll, fma, load, bcast, lambda r, u: f"a[{u*MR + r}]",
           f"a += {unroll*MR}; b += {unroll*NR};", f"a += {MR}; b += {NR};")
    def epilogue():
        w(f"            var va = {bcast}(alpha);")
        w(f"            float* dst = full ? c : tile;")
        w(f"            long ld = full ? ldc : NR;")
        w(f"            if (full && beta != 0f)")
        w("            {")
        w(f"                var vb = {bcast}(beta);")
        for r in range(MR):
            for v in range(NRV):
                w(f"                {vec}.Store({fma}(vb, {load}(dst + {r} * ld + {v*lanes}), c{r}{v} * va), dst + {r} * ld + {v*lanes});")
        w("            }")
        w("            else")
        w("            {")
        for r in range(MR):
            for v in range(NRV):
                w(f"                {vec}.Store(c{r}{v} * va, dst + {r} * ld + {v*lanes});")
        w("            }")
        w("            if (!full) SgemmTile.Merge(tile, NR, c, ldc, beta, mr, nr);")
    epilogue()
    w("        }")
    direct(w, vec, lanes, MR, NRV, unroll, fma, load, bcast, create_zero, epilogue)
    w("    }")
    return "\n".join(L)

def direct(w, vec, lanes, MR, NRV, unroll, fma, load, bcast, create_zero, epilogue):
    """RunDirect: the same product with A read in place from row-major memory (MR rows lda apart), no packing."""
    NR = NRV*lanes
    bases = (MR + 2) // 3
    w("")
    w("        /// <summary>")
    w(f"        /// The same product with op(A) read in place: <paramref name=\"a\"/> points at row 0 of {MR} full rows of a row-major")
    w(f"        /// matrix <paramref name=\"lda\"/> floats apart (kc floats each), so a non-transposed A needs no packing. The rows are")
    w(f"        /// reached from {bases} base pointers at offsets 0, lda and 2·lda (a base-plus-index address per broadcast).")
    w("        /// </summary>")
    w("        [MethodImpl(MethodImplOptions.AggressiveOptimization)]")
    w("        public static void RunDirect(int kc, float* a, long lda, float* b, float* c, long ldc, float alpha, float beta, int nr, float* tile)")
    w("        {")
    prologue(w, vec, MR, NRV, NR, create_zero, ["bool full = nr == NR;", "int mr = MR;"])
    w(f"            nint l1 = (nint)(lda * sizeof(float)), l2 = 2 * l1;")
    for k in range(bases):
        w(f"            byte* r{k} = (byte*)(a + {3*k} * lda);")
    def addr(r, u):
        k, m = divmod(r, 3)
        off = ["", " + l1", " + l2"][m]
        return f"*(float*)(r{k}{off} + {4*u})"
    k_loop(w, lanes, MR, NRV, NR, unroll, fma, load, bcast, addr,
           " ".join(f"r{k} += {4*unroll};" for k in range(bases)) + f" b += {unroll*NR};",
           " ".join(f"r{k} += 4;" for k in range(bases)) + f" b += {NR};")
    epilogue()
    w("        }")

hdr = '''// <auto-generated> by Compute/Cpu/SgemmKernels.Generate.py (python3 SgemmKernels.Generate.py > SgemmKernels.Generated.cs);
// edit the generator, not this file. </auto-generated>
// Micro-kernels of the packed CPU SGEMM, fully unrolled (C# has no macros): every accumulator is a separate local
// so that the JIT keeps them all in registers; do not refactor into helpers taking refs.
#nullable enable
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace CrateIL.Compute.Cpu;

internal static unsafe partial class SgemmKernels
{
'''
out = hdr
out += kernel("V256x6x16", "Vector256", 8, 6, 2, 4, "Fmadd256", "Vector256.Load", "Vector256.Create", "Vector256<float>.Zero",
  "Vector256/FMA 6×16 micro-kernel: 12 accumulators + 2 B vectors + 1 broadcast fit the 16 AVX2 registers.") + "\n\n"
out += kernel("V512x12x32", "Vector512", 16, 12, 2, 2, "Fmadd512", "Vector512.Load", "Vector512.Create", "Vector512<float>.Zero",
  "Vector512 12×32 micro-kernel (AVX-512): 24 accumulators of the 32 zmm registers.") + "\n"
if len(sys.argv) > 1 and sys.argv[1] == "extra":  # variants measured while tuning (slower here)
    out += "\n" + kernel("V512x24x16", "Vector512", 16, 24, 1, 2, "Fmadd512", "Vector512.Load", "Vector512.Create", "Vector512<float>.Zero",
      "Vector512 24×16 micro-kernel (AVX-512): 24 accumulators, one B vector per k.") + "\n"
    out += "\n" + kernel("V256x12x16", "Vector256", 8, 12, 2, 2, "Fmadd256", "Vector256.Load", "Vector256.Create", "Vector256<float>.Zero",
      "Vector256 12×16 micro-kernel using the 32 EVEX registers.") + "\n"
out += "}\n"
print(out)
