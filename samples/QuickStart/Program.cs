// The README's "Library at a glance", verbatim between the markers: a CRATE classifier, its logits, and every head's
// CLS attention (Eq. 10) flowing straight into the segmentation tools. Run: dotnet run --project samples/QuickStart -c Release
// [README]
using CrateIL.Compute.Devices;
using CrateIL.Crate.Data;
using CrateIL.Crate.Models;
using CrateIL.Imaging;
using CrateIL.Segmentation.Attention;

using var device = DeviceRegistry.Open();                    // CUDA > OpenCL GPU > CPU, or CRATEIL_DEVICE
var config = CrateConfig.Preset("crate-t", classes: 10);     // or CrateCheckpoint.Load("crate.safetensors", device)
using var model = new CrateModel(config, device, seed: 0);

// Two normalised NCHW images: here rendered by the generated shapes set; any float32 [B, 3, 224, 224] works.
IDataset shapes = new ShapesInClutter(count: 2, seed: 1, imageSize: 224, patchSize: 16);
var pixels = new float[2 * shapes.SampleLength];
for (int i = 0; i < 2; i++)
{
    var random = SampleRandom.For(0, 0, i);
    shapes.Load(i, pixels.AsSpan(i * shapes.SampleLength, shapes.SampleLength), ref random);
}
using var images = device.FromHost(pixels, 2, 3, 224, 224);

float[] logits = model.Forward(images).ToArray();            // [2, classes]
using var attention = model.ClsAttention(layer: config.Depth - 1);   // [2, heads, 14, 14], each head sums to 1
AttentionMaps[] maps = AttentionMaps.FromBatch(attention);   // one per image: heads × patch grid
BinaryMask[] masks = maps[0].TopFractionMasks();             // the paper's top-60 % rule, one mask per head
Console.WriteLine($"{device.Spec}: logits[0..2] = {logits[0]:F3}, {logits[1]:F3}; {maps[0].Heads} heads on a " +
                  $"{maps[0].Height}×{maps[0].Width} grid; head 0 keeps {masks[0].Area} of {masks[0].Height * masks[0].Width} patches");
// [/README]
