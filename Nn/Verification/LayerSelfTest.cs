using CrateIL.Compute.Devices;
using CrateIL.Compute.Ops;
using CrateIL.Compute.Tensors;
using CrateIL.Compute.Verification;
using CrateIL.Nn.Layers;
using CrateIL.Nn.Parameters;
using static CrateIL.Compute.Verification.SampleData;

namespace CrateIL.Nn.Verification;

/// <summary>
/// The Nn half of <c>crate selftest</c>: every layer and block (Linear, LayerNorm, patch embedding, MSSA, MHSA, ISTA,
/// MLP, classification head, dropout), forward and backward with parameter gradients, and five steps of each optimizer (AdamW,
/// Lion, SGD), on the run's device against the float64 references beside each layer, under <see cref="LayerTolerances"/>.
/// </summary>
public static class LayerSelfTest
{
    public static void Run(SelfTestRun run)
    {
        Linears(run);
        LayerNorms(run);
        PatchEmbeddings(run);
        MssaBlocks(run);
        MhsaBlocks(run);
        IstaBlocks(run);
        MlpBlocks(run);
        Heads(run);
        Dropouts(run);
        Optimizers(run);
    }

    /// <summary>
    /// Dropout's mask is a hash of (seed, step, index), the same on every backend: forward and backward against the
    /// float64 map, within one rounding of the scale (the unit tests demand bit equality with the float32 map).
    /// </summary>
    private static void Dropouts(SelfTestRun run)
    {
        int[] lengths = run.Reduced ? [7, 65] : run.Quick ? [785] : [1, 7, 65, 785, 35001];
        foreach (int n in lengths)
            run.Case("block", "dropout", $"{n} p0.3", c =>
            {
                var dev = run.Device;
                var layer = new Dropout(0.3f, seed: 42);
                var xh = Normal(91, n);
                var dyh = Normal(92, n);
                using var x = dev.FromHost(xh, n); using var y = Poisoned(dev, n);
                using var dy = dev.FromHost(dyh, n); using var dx = Poisoned(dev, n);
                layer.Forward(x, y, step: 5);
                layer.Backward(dy, dx);
                c.Compare("y", y.ToArray(), DropoutReference.Forward(ToDouble(xh), 0.3f, 42, 5), OpTolerances.Arithmetic);
                c.Compare("dx", dx.ToArray(), DropoutReference.Forward(ToDouble(dyh), 0.3f, 42, 5), OpTolerances.Arithmetic);
            });
    }

    /// <summary>
    /// Builds <paramref name="store"/> on the device, gives LayerNorm parameters (initialised to exactly 1 and 0)
    /// random values so that γ/β mistakes show, zeroes the gradients, and returns every value in float64.
    /// </summary>
    private static Dictionary<string, double[]> Prepare(ParameterStore store, Device device, int seed)
    {
        store.Build(device, seed);
        var values = new Dictionary<string, double[]>();
        foreach (var p in store.Parameters)
        {
            float[] v = p.Init switch
            {
                ParameterInit.Ones => Normal(seed++, p.Length, 0.3f, 1f),
                ParameterInit.Zeros => Normal(seed++, p.Length, 0.3f),
                _ => p.Value.ToArray(),
            };
            p.Value.CopyFrom(v);
            values[p.Name] = ToDouble(v);
        }
        store.ZeroGrads();
        return values;
    }

    private static void CompareGrad(SelfTestCase c, ParameterStore store, string name, double[] expected, Tolerance tol) =>
        c.Compare("d" + name, store[name].Grad.ToArray(), expected, tol);

    private static Tensor Poisoned(Device device, params int[] shape)
    {
        var t = device.Allocate(shape);
        t.Fill(float.NaN);
        return t;
    }

    private static void Linears(SelfTestRun run)
    {
        (int Rows, int In, int Out, bool Bias)[] shapes = run.Reduced ? [(7, 5, 3, true), (1, 7, 5, false)]
            : run.Quick ? [(65, 17, 9, true)] : [(1, 7, 5, true), (7, 5, 3, false), (65, 17, 9, true), (127, 65, 33, true)];
        foreach (var (rows, inF, outF, bias) in shapes)
            run.Case("block", bias ? "linear" : "linear (no bias)", $"{rows}×{inF}→{outF}", c =>
            {
                var dev = run.Device;
                using var store = new ParameterStore();
                using var layer = new Linear(store, "fc", inF, outF, bias);
                var v = Prepare(store, dev, 10 + rows);
                var xh = Normal(11 + rows, (long)rows * inF);
                var dyh = Normal(12 + rows, (long)rows * outF);
                using var x = dev.FromHost(xh, rows, inF);
                using var y = Poisoned(dev, rows, outF);
                using var dy = dev.FromHost(dyh, rows, outF);
                using var dx = Poisoned(dev, rows, inF);
                layer.Forward(x, y);
                layer.Backward(dy, dx);
                var w = v["fc.weight"];
                var b = bias ? v["fc.bias"] : null;
                c.Compare("y", y.ToArray(), LinearReference.Forward(ToDouble(xh), w, b, rows, inF, outF), LayerTolerances.LinearForward);
                var (rdx, rdw, rdb) = LinearReference.Backward(ToDouble(xh), w, ToDouble(dyh), rows, inF, outF);
                c.Compare("dx", dx.ToArray(), rdx, LayerTolerances.LinearBackward);
                CompareGrad(c, store, "fc.weight", rdw, LayerTolerances.LinearBackward);
                if (bias) CompareGrad(c, store, "fc.bias", rdb, LayerTolerances.LinearBackward);
            });
    }

    private static void LayerNorms(SelfTestRun run)
    {
        (int Rows, int Dim)[] shapes = run.Reduced ? [(7, 5), (1, 7)] : run.Quick ? [(65, 7)] : [(1, 7), (65, 7), (7, 127), (3, 785)];
        foreach (var (rows, dim) in shapes)
            run.Case("block", "layernorm layer", $"{rows}×{dim}", c =>
            {
                var dev = run.Device;
                using var store = new ParameterStore();
                using var layer = new LayerNormLayer(store, "norm", dim);
                var v = Prepare(store, dev, 20 + rows);
                var xh = Normal(21 + rows, (long)rows * dim, 2f, 3f);
                var dyh = Normal(22 + rows, (long)rows * dim);
                using var x = dev.FromHost(xh, rows, dim);
                using var y = Poisoned(dev, rows, dim);
                using var dy = dev.FromHost(dyh, rows, dim);
                using var dx = Poisoned(dev, rows, dim);
                layer.Forward(x, y);
                layer.Backward(dy, dx);
                var (ry, mean, rstd) = LayerNormReference.Forward(ToDouble(xh), v["norm.weight"], v["norm.bias"], rows, dim);
                var (rdx, rdg, rdb) = LayerNormReference.Backward(ToDouble(dyh), ToDouble(xh), v["norm.weight"], mean, rstd, rows, dim);
                c.Compare("y", y.ToArray(), ry, OpTolerances.LayerNormForward);
                c.Compare("dx", dx.ToArray(), rdx, OpTolerances.LayerNormBackward);
                CompareGrad(c, store, "norm.weight", rdg, OpTolerances.LayerNormBackward);
                CompareGrad(c, store, "norm.bias", rdb, OpTolerances.LayerNormBackward);
            });
    }

    private static void PatchEmbeddings(SelfTestRun run)
    {
        (int B, int C, int H, int W, int P, int Dim)[] shapes = run.Reduced ? [(1, 3, 6, 9, 3, 7)]
            : run.Quick ? [(2, 3, 20, 15, 5, 65)] : [(2, 3, 6, 9, 3, 7), (3, 3, 20, 15, 5, 65), (2, 3, 32, 32, 4, 64)];
        foreach (var (batch, channels, height, width, patch, dim) in shapes)
            run.Case("block", "patch embedding", $"{batch}×{channels}×{height}×{width} p{patch} d{dim}", c =>
            {
                var dev = run.Device;
                using var store = new ParameterStore();
                using var layer = new PatchEmbedding(store, channels, patch, dim);
                var v = Prepare(store, dev, 30 + dim);
                int n = layer.TokensFor(height, width);
                var imgh = Normal(31, (long)batch * channels * height * width);
                var dth = Normal(32, (long)batch * n * dim);
                using var image = dev.FromHost(imgh, batch, channels, height, width);
                using var tokens = Poisoned(dev, batch, n, dim);
                using var dTokens = dev.FromHost(dth, batch, n, dim);
                using var dImage = Poisoned(dev, batch, channels, height, width);
                layer.Forward(image, tokens);
                layer.Backward(dTokens, dImage);
                const string pre = "to_patch_embedding";
                var p = new PatchEmbeddingReference.Params(v[pre + ".1.weight"], v[pre + ".1.bias"], v[pre + ".2.weight"],
                    v[pre + ".2.bias"], v[pre + ".3.weight"], v[pre + ".3.bias"]);
                var (rt, saved) = PatchEmbeddingReference.Forward(ToDouble(imgh), p, batch, channels, height, width, patch, dim);
                var g = PatchEmbeddingReference.Backward(ToDouble(dth), p, saved, batch, channels, height, width, patch, dim);
                var fwd = LayerTolerances.PatchEmbeddingForward;
                var bwd = LayerTolerances.PatchEmbeddingBackward;
                c.Compare("tokens", tokens.ToArray(), rt, fwd);
                c.Compare("dimage", dImage.ToArray(), g.DImage, bwd);
                CompareGrad(c, store, pre + ".1.weight", g.DGamma1, bwd);
                CompareGrad(c, store, pre + ".1.bias", g.DBeta1, bwd);
                CompareGrad(c, store, pre + ".2.weight", g.DW, bwd);
                CompareGrad(c, store, pre + ".2.bias", g.DB, bwd);
                CompareGrad(c, store, pre + ".3.weight", g.DGamma3, bwd);
                CompareGrad(c, store, pre + ".3.bias", g.DBeta3, bwd);
            });
    }

    /// <summary>Attention shapes: N = 1, 7, 65 and 300 (≥ 256 takes the flash path); on the simulator N ≤ 20, dh ≤ 8.</summary>
    private static (int Batch, int N, int Dim, int Heads, int Dh)[] AttentionShapes(SelfTestRun run) =>
        run.Reduced ? [(2, 7, 10, 3, 6)]
        : run.Quick ? [(2, 65, 30, 3, 64)]
        : [(1, 1, 8, 2, 4), (2, 7, 10, 3, 6), (1, 7, 8, 1, 8), (2, 65, 30, 3, 64), (1, 300, 24, 2, 16)];

    private static void MssaBlocks(SelfTestRun run)
    {
        foreach (var (batch, n, dim, heads, dh) in AttentionShapes(run))
            run.Case("block", "mssa block", $"{batch}×{n}×{dim} h{heads} dh{dh}", c =>
            {
                var dev = run.Device;
                const string pre = "transformer.layers.0.0.";
                using var store = new ParameterStore();
                using var layer = new MssaBlock(store, pre, dim, heads, dh);
                var v = Prepare(store, dev, 40 + n);
                int inner = heads * dh, rows = batch * n;
                // Unit variance per column of the projection, as in training (the default init is fine for the rest).
                var qkv = Normal(41, (long)inner * dim, 1f / MathF.Sqrt(dim));
                layer.Attention.Qkv.Value.CopyFrom(qkv);
                v[pre + "fn.qkv.weight"] = ToDouble(qkv);
                var xh = Normal(42, (long)rows * dim);
                var dyh = Normal(43, (long)rows * dim);
                using var x = dev.FromHost(xh, batch, n, dim);
                using var dy = dev.FromHost(dyh, batch, n, dim);
                using var output = Poisoned(dev, batch, n, dim);
                using var dx = Poisoned(dev, batch, n, dim);
                layer.Forward(x, output, batch);
                layer.Backward(dy, dx);
                bool project = layer.Attention.ProjectsOut;
                var p = new MssaBlockReference.Params(v[pre + "norm.weight"], v[pre + "norm.bias"], v[pre + "fn.qkv.weight"],
                    project ? v[pre + "fn.to_out.0.weight"] : null, project ? v[pre + "fn.to_out.0.bias"] : null);
                var r = MssaBlockReference.Run(ToDouble(xh), p, ToDouble(dyh), batch, n, dim, heads, dh);
                c.Compare("y", output.ToArray(), r.Output, LayerTolerances.Attention(r.Output));
                c.Compare("dx", dx.ToArray(), r.Dx, LayerTolerances.Attention(r.Dx));
                CompareGrad(c, store, pre + "norm.weight", r.DNormWeight, LayerTolerances.Attention(r.DNormWeight));
                CompareGrad(c, store, pre + "norm.bias", r.DNormBias, LayerTolerances.Attention(r.DNormBias));
                CompareGrad(c, store, pre + "fn.qkv.weight", r.DQkv, LayerTolerances.Attention(r.DQkv));
                if (project)
                {
                    CompareGrad(c, store, pre + "fn.to_out.0.weight", r.DOutWeight!, LayerTolerances.Attention(r.DOutWeight!));
                    CompareGrad(c, store, pre + "fn.to_out.0.bias", r.DOutBias!, LayerTolerances.Attention(r.DOutBias!));
                }
            });
    }

    private static void MhsaBlocks(SelfTestRun run)
    {
        foreach (var (batch, n, dim, heads, dh) in AttentionShapes(run))
            run.Case("block", "mhsa block", $"{batch}×{n}×{dim} h{heads} dh{dh}", c =>
            {
                var dev = run.Device;
                int inner = heads * dh, rows = batch * n;
                var p = new MhsaBlockReference.Params(
                    Uniform(51, dim, 0.5f, 1.5f), Uniform(52, dim, -0.3f, 0.3f),
                    Normal(53, 3 * inner * dim, 1f / MathF.Sqrt(dim)), Uniform(54, 3 * inner, -0.2f, 0.2f),
                    Normal(55, dim * inner, 0.2f), Uniform(56, dim, -0.2f, 0.2f));
                var xh = Normal(57, (long)rows * dim);
                var dyh = Normal(58, (long)rows * dim);
                const string pre = "blocks.0.";
                using var store = new ParameterStore();
                using var block = new MhsaBlock(store, pre, dim, heads, dh);
                store.Build(dev);
                block.NormWeight.Value.CopyFrom(p.Gamma); block.NormBias.Value.CopyFrom(p.Beta);
                block.Attention.QkvWeight.Value.CopyFrom(p.Wqkv); block.Attention.QkvBias.Value.CopyFrom(p.Bqkv);
                block.Attention.ProjWeight.Value.CopyFrom(p.Wp); block.Attention.ProjBias.Value.CopyFrom(p.Bp);
                using var x = dev.FromHost(xh, rows, dim);
                using var dy = dev.FromHost(dyh, rows, dim);
                using var output = Poisoned(dev, rows, dim);
                using var dx = Poisoned(dev, rows, dim);
                block.Forward(x, output, batch);
                block.Backward(dy, dx);
                var r = MhsaBlockReference.Run(p, ToDouble(xh), ToDouble(dyh), batch, n, dim, heads, dh);
                c.Compare("y", output.ToArray(), r.Output, LayerTolerances.Attention(r.Output));
                c.Compare("dx", dx.ToArray(), r.Dx, LayerTolerances.Attention(r.Dx));
                foreach (var (name, expected) in r.Grads)
                    CompareGrad(c, store, pre + name, expected, LayerTolerances.Attention(expected));
            });
    }

    private static void IstaBlocks(SelfTestRun run)
    {
        (int Batch, int Tokens, int Dim)[] shapes = run.Reduced ? [(1, 7, 6)] : run.Quick ? [(2, 65, 64)] : [(1, 1, 6), (1, 7, 6), (1, 65, 10), (2, 65, 64), (1, 785, 32)];
        foreach (var (batch, tokens, dim) in shapes)
            foreach (var kind in new[] { ThresholdKind.OneSided, ThresholdKind.Symmetric })
                run.Case("block", kind == ThresholdKind.OneSided ? "ista block" : "ista block (symmetric)", $"{batch}×{tokens}×{dim}", c =>
                {
                    var dev = run.Device;
                    const string pre = "transformer.layers.0.1.";
                    int rows = batch * tokens;
                    using var store = new ParameterStore();
                    using var block = new IstaBlock(store, pre, dim, threshold: kind);
                    var v = Prepare(store, dev, 60 + dim);
                    var xh = Normal(61, (long)rows * dim, 2f, 0.5f);
                    var dyh = Normal(62, (long)rows * dim);
                    using var x = dev.FromHost(xh, batch, tokens, dim);
                    using var y = Poisoned(dev, batch, tokens, dim);
                    using var dy = dev.FromHost(dyh, batch, tokens, dim);
                    using var dx = Poisoned(dev, batch, tokens, dim);
                    block.Forward(x, y);
                    block.Backward(dy, dx);
                    var r = IstaBlockReference.Run(ToDouble(xh), v[pre + "norm.weight"], v[pre + "norm.bias"], v[pre + "fn.weight"],
                        ToDouble(dyh), rows, dim, block.Eta, block.Lambda, kind == ThresholdKind.Symmetric);
                    var tol = LayerTolerances.Ista;
                    c.Compare("y", y.ToArray(), r.Y, tol);
                    c.Compare("dx", dx.ToArray(), r.Dx, tol);
                    CompareGrad(c, store, pre + "norm.weight", r.DGamma, tol);
                    CompareGrad(c, store, pre + "norm.bias", r.DBeta, tol);
                    CompareGrad(c, store, pre + "fn.weight", r.DDict, tol);
                });
    }

    private static void MlpBlocks(SelfTestRun run)
    {
        (int Batch, int Tokens, int Dim)[] shapes = run.Reduced ? [(1, 7, 5)] : run.Quick ? [(3, 65, 33)] : [(1, 1, 5), (1, 7, 5), (3, 65, 33), (2, 17, 96)];
        foreach (var (batch, tokens, dim) in shapes)
            run.Case("block", "mlp block", $"{batch}×{tokens}×{dim}", c =>
            {
                var dev = run.Device;
                int rows = batch * tokens, hidden = 4 * dim;
                using var store = new ParameterStore();
                using var block = new MlpBlock(store, "blocks.0", dim, naming: MlpNaming.Timm);
                var v = Prepare(store, dev, 70 + dim);
                var xh = Normal(71, (long)rows * dim, 2f);
                var dyh = Normal(72, (long)rows * dim);
                using var x = dev.FromHost(xh, batch, tokens, dim);
                using var y = Poisoned(dev, batch, tokens, dim);
                using var dy = dev.FromHost(dyh, batch, tokens, dim);
                using var dx = Poisoned(dev, batch, tokens, dim);
                block.Forward(x, y);
                block.Backward(dy, dx);
                const string norm = "blocks.0.norm2", fc1 = "blocks.0.mlp.fc1", fc2 = "blocks.0.mlp.fc2";
                var p = new MlpBlockReference.Params(v[norm + ".weight"], v[norm + ".bias"], v[fc1 + ".weight"], v[fc1 + ".bias"],
                    v[fc2 + ".weight"], v[fc2 + ".bias"]);
                var (ry, saved) = MlpBlockReference.Forward(ToDouble(xh), p, rows, dim, hidden);
                var g = MlpBlockReference.Backward(ToDouble(xh), ToDouble(dyh), p, saved, rows, dim, hidden);
                var bwd = LayerTolerances.MlpBackward;
                c.Compare("y", y.ToArray(), ry, LayerTolerances.MlpForward);
                c.Compare("dx", dx.ToArray(), g.Dx, bwd);
                CompareGrad(c, store, norm + ".weight", g.DGamma, bwd);
                CompareGrad(c, store, norm + ".bias", g.DBeta, bwd);
                CompareGrad(c, store, fc1 + ".weight", g.DW1, bwd);
                CompareGrad(c, store, fc1 + ".bias", g.DB1, bwd);
                CompareGrad(c, store, fc2 + ".weight", g.DW2, bwd);
                CompareGrad(c, store, fc2 + ".bias", g.DB2, bwd);
            });
    }

    private static void Heads(SelfTestRun run)
    {
        (int Batch, int Tokens, int Dim, int Classes)[] shapes = run.Reduced ? [(3, 7, 5, 4)] : run.Quick ? [(5, 65, 33, 10)]
            : [(1, 1, 7, 11), (3, 7, 5, 4), (5, 65, 33, 10), (2, 197, 127, 1000)];
        foreach (var (batch, tokens, dim, classes) in shapes)
            foreach (var pooling in new[] { Pooling.Cls, Pooling.Mean })
                run.Case("block", pooling == Pooling.Cls ? "head (cls)" : "head (mean)", $"{batch}×{tokens}×{dim}→{classes}", c =>
                {
                    var dev = run.Device;
                    using var store = new ParameterStore();
                    using var head = new ClassificationHead(store, dim, classes, pooling);
                    var v = Prepare(store, dev, 80 + dim);
                    var xh = Normal(81, (long)batch * tokens * dim, 2f);
                    var dh = Normal(82, (long)batch * classes);
                    using var x = dev.FromHost(xh, batch, tokens, dim);
                    using var logits = Poisoned(dev, batch, classes);
                    using var dLogits = dev.FromHost(dh, batch, classes);
                    using var dx = Poisoned(dev, batch, tokens, dim);
                    head.Forward(x, logits);
                    head.Backward(dLogits, dx);
                    var g = v["mlp_head.0.weight"]; var w = v["mlp_head.1.weight"];
                    var (rl, saved) = ClassificationHeadReference.Forward(ToDouble(xh), g, v["mlp_head.0.bias"], w, v["mlp_head.1.bias"],
                        batch, tokens, dim, classes, pooling);
                    var (rdx, rdg, rdb, rdw, rdbias) = ClassificationHeadReference.Backward(ToDouble(dh), g, w, saved, batch, tokens, dim, classes, pooling);
                    var bwd = LayerTolerances.HeadBackward;
                    c.Compare("logits", logits.ToArray(), rl, LayerTolerances.HeadForward);
                    c.Compare("dx", dx.ToArray(), rdx, bwd);
                    CompareGrad(c, store, "mlp_head.0.weight", rdg, bwd);
                    CompareGrad(c, store, "mlp_head.0.bias", rdb, bwd);
                    CompareGrad(c, store, "mlp_head.1.weight", rdw, bwd);
                    CompareGrad(c, store, "mlp_head.1.bias", rdbias, bwd);
                });
    }

    /// <summary>Five steps of each optimizer over parameters of odd sizes with mixed decay flags, against the float64 rules.</summary>
    private static void Optimizers(SelfTestRun run)
    {
        (string Name, int Length, bool Decay)[] layout = run.Reduced
            ? [("a", 7, true), ("b", 1, false), ("c", 33, true)]
            : [("a", 785, true), ("b", 1, false), ("c", 127, true), ("d", 65, false), ("e", 35001, true)];
        int n = layout.Sum(p => p.Length);
        foreach (var optimizer in new[] { "adamw", "lion", "sgd", "sgd (nesterov)" })
            run.Case("optim", optimizer, $"{n} in {layout.Length} tensors, 5 steps", c =>
            {
                const double lr = 0.01, wd = 0.3;
                const Optim.WeightDecayScope Flagged = Optim.WeightDecayScope.DecayFlaggedOnly;
                var initial = Uniform(1, n);
                using var store = new ParameterStore();
                foreach (var (name, length, decay) in layout) store.Add(name, [length], ParameterInit.Zeros, decay: decay);
                store.Build(run.Device);
                store.Values.CopyFrom(initial);
                var decayMask = layout.SelectMany(p => Enumerable.Repeat(p.Decay, p.Length)).ToArray();
                using Optim.Optimizer opt = optimizer switch
                {
                    "adamw" => new Optim.AdamW(store, lr, wd, decayScope: Flagged),
                    "lion" => new Optim.Lion(store, lr, wd, decayScope: Flagged),
                    "sgd" => new Optim.Sgd(store, lr, momentum: 0.9, dampening: 0.2, weightDecay: wd, decayScope: Flagged),
                    _ => new Optim.Sgd(store, lr, momentum: 0.8, weightDecay: wd, nesterov: true, decayScope: Flagged),
                };
                var p = ToDouble(initial);
                var s1 = new double[n];
                var s2 = new double[n];
                for (int step = 1; step <= 5; step++)
                {
                    var g = Normal(100 + step, n, std: 0.5f);
                    for (int i = 0; i < n; i += 13) g[i] = 0f;   // exact zeros exercise sign(0) and zero gradients
                    store.Grads.CopyFrom(g);
                    opt.Step();
                    var gd = ToDouble(g);
                    switch (optimizer)
                    {
                        case "adamw": Optim.OptimizerReference.AdamW(p, gd, s1, s2, decayMask, step, lr, wd); break;
                        case "lion": Optim.OptimizerReference.Lion(p, gd, s1, decayMask, lr, wd); break;
                        case "sgd": Optim.OptimizerReference.Sgd(p, gd, s1, decayMask, step, lr, momentum: 0.9, dampening: 0.2, wd: wd); break;
                        default: Optim.OptimizerReference.Sgd(p, gd, s1, decayMask, step, lr, momentum: 0.8, wd: wd, nesterov: true); break;
                    }
                }
                c.Compare("parameters", store.Values.ToArray(), p, LayerTolerances.OptimizerStep);
                c.Compare(opt.State[0].Name, opt.State[0].Tensor.ToArray(), s1, LayerTolerances.OptimizerStep);
                if (optimizer == "adamw") c.Compare(opt.State[1].Name, opt.State[1].Tensor.ToArray(), s2, LayerTolerances.AdamSecondMoment);
            });
    }
}
