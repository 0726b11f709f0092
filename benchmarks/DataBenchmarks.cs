using BenchmarkDotNet.Attributes;
using CrateIL.Crate.Data;
using CrateIL.Imaging;

namespace CrateIL.Benchmarks;

/// <summary>
/// Data pipeline costs per sample on one thread: fused crop/resize/normalise of a 500×375 RGB image to 224², SkiaSharp
/// JPEG decoding of that image, ShapesInClutter rendering, and a 2-worker DataLoader epoch.
/// Run: dotnet run -c Release --project benchmarks -- --filter '*DataBenchmarks*' --job short
/// </summary>
[MemoryDiagnoser]
public class DataBenchmarks
{
    private byte[] _pixels = null!, _jpeg = null!, _rgba = [], _rgb = null!;
    private BinaryMask _mask = null!;
    private float[] _dst = null!;
    private ImagePipeline _train = null!, _eval = null!;
    private ShapesInClutter _shapes = null!;
    private DataLoader _loader = null!;
    private int _i;

    [GlobalSetup]
    public void Setup()
    {
        // A photo-like 500×375 image: one ShapesInClutter sample upscaled, so the JPEG has realistic content.
        var src = new ShapesInClutter(1, seed: 1, imageSize: 128);
        var (rgb, _, _) = src.Render(0);
        _pixels = new byte[500 * 375 * 3];
        var up = new float[3 * 375 * 500];
        var rng = default(SampleRandom);
        new ImagePipeline(new Resize(500, 375), Normalization.UnitRange(3)).Run(ImageView.Interleaved(rgb, 128, 128, 3), up, ref rng);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 500 * 375; i++) _pixels[i * 3 + c] = (byte)Math.Clamp(up[c * 500 * 375 + i] * 255 + 0.5f, 0, 255);
        string path = Path.Combine(Path.GetTempPath(), $"crateil-bench-{Environment.ProcessId}.jpg");
        ImageFile.SaveJpeg(path, _pixels, 500, 375, 3, 90);
        _jpeg = File.ReadAllBytes(path);
        File.Delete(path);
        _dst = new float[3 * 224 * 224];
        _train = new ImagePipeline(new RandomResizedCrop(224));
        _eval = new ImagePipeline(new ResizeCenterCrop(224));
        _shapes = new ShapesInClutter(100_000, seed: 2);
        _rgb = new byte[64 * 64 * 3];
        _mask = new BinaryMask(64, 64);
        _loader = new DataLoader(new ShapesInClutter(512, seed: 3), batchSize: 64, seed: 1, workers: 2, prefetch: 4);
    }

    [Benchmark(Description = "RandomResizedCrop+flip+normalise 500x375 -> 224")]
    public void TrainTransform()
    {
        var rng = SampleRandom.For(1, 0, _i++);
        _train.Run(ImageView.Interleaved(_pixels, 500, 375, 3), _dst, ref rng);
    }

    [Benchmark(Description = "Resize(256)+CenterCrop(224)+normalise 500x375")]
    public void EvalTransform()
    {
        var rng = default(SampleRandom);
        _eval.Run(ImageView.Interleaved(_pixels, 500, 375, 3), _dst, ref rng);
    }

    [Benchmark(Description = "SkiaSharp JPEG decode 500x375")]
    public int DecodeJpeg() => ImageFile.DecodeRgb(_jpeg, "bench", ref _rgba).Width;

    [Benchmark(Description = "ShapesInClutter render 64x64")]
    public ShapePlacement RenderShapes() => _shapes.Render(_i++ % 100_000, _rgb, _mask);

    [Benchmark(Description = "DataLoader epoch: 512 ShapesInClutter samples, batch 64, 2 workers")]
    public int LoaderEpoch()
    {
        int n = 0;
        foreach (var b in _loader.Epoch(_i++)) n += b.Count;
        return n;
    }
}
