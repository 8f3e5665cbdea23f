using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using QueCC.Model.Checkpoints;
using QueCC.Model.Clip;
using QueCC.Model.Commands;
using QueCC.Model.Compression;
using QueCC.Model.Data;
using SkiaSharp;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Robustness;

/// <summary>Thrown by a case body when a loader accepted a record that the mutation made invalid.</summary>
public sealed class MalformedAcceptedException(string message) : Exception(message);

/// <summary>Thrown by a case body when a valid-by-construction input was read wrongly.</summary>
public sealed class MishandledException(string message) : Exception(message);

/// <summary>Thrown by a case body when the loader skipped the malformed record with this (one-line) reason: a clean rejection.</summary>
public sealed class RecordSkippedException(string reason) : Exception(reason)
{
    public string Reason { get; } = reason;
}

/// <summary>A tiny LLaVA folder (random init) and a PNG, shared by the config and image cases.</summary>
public sealed class MutationFixture : IDisposable
{
    public string Root { get; } = Path.Combine(Path.GetTempPath(), $"quecc-mutation-{Guid.NewGuid():N}");
    public string ModelDir => Path.Combine(Root, "model");
    public string ImagePath => Path.Combine(Root, "image.png");

    public MutationFixture()
    {
        // A stated cap well above the tiny models and far below the machine, so an absurd config is refused fast.
        Environment.SetEnvironmentVariable(Runtime.ModelMemory.Variable, (2L << 30).ToString());
        Directory.CreateDirectory(Root);
        LlavaEntryPoints.InitModel("tiny", "quecc", 4, ModelDir);
        Images.Noise(48, 40, 1).SavePng(ImagePath);
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, true); } catch (IOException) { }
    }
}

internal static class Images
{
    public static RgbImage Noise(int w, int h, int seed)
    {
        var r = new Random(seed);
        var img = new RgbImage(w, h);
        r.NextBytes(img.Pixels);
        return img;
    }

    public static byte[] Encode(RgbImage img, SKEncodedImageFormat format)
    {
        using var bmp = new SKBitmap(new SKImageInfo(img.Width, img.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < img.Width; x++)
                bmp.SetPixel(x, y, new SKColor(img[y, x, 0], img[y, x, 1], img[y, x, 2]));
        using var data = bmp.Encode(format, 90);
        return data.ToArray();
    }

    /// <summary>An uncompressed 24-bit BMP, written by hand (SkiaSharp decodes BMP but does not encode it).</summary>
    public static byte[] Bmp(RgbImage img)
    {
        int row = (img.Width * 3 + 3) / 4 * 4, size = 54 + row * img.Height;
        var b = new byte[size];
        b[0] = (byte)'B'; b[1] = (byte)'M';
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(2), size);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(10), 54);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(14), 40);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(18), img.Width);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(22), img.Height);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(26), 1);
        BinaryPrimitives.WriteInt16LittleEndian(b.AsSpan(28), 24);
        BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(34), row * img.Height);
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < img.Width; x++)
            {
                int o = 54 + (img.Height - 1 - y) * row + 3 * x;
                b[o] = img[y, x, 2]; b[o + 1] = img[y, x, 1]; b[o + 2] = img[y, x, 0];
            }
        return b;
    }

    /// <summary>The classic 1×1 GIF89a.</summary>
    public static readonly byte[] Gif = Convert.FromBase64String("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==");

    private static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        return c;
    }).ToArray();

    /// <summary>PNG's CRC-32 (ISO 3309), so a rewritten IHDR still passes libpng's check.</summary>
    public static uint Crc(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (var x in data) c = CrcTable[(c ^ x) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }

    /// <summary>A PNG whose IHDR declares <paramref name="w"/>×<paramref name="h"/> (CRC fixed) while the data stays the original's.</summary>
    public static byte[] WithDims(byte[] png, uint w, uint h)
    {
        var b = (byte[])png.Clone();
        // Signature (8) + length (4) + "IHDR" (4), then width, height; the CRC covers type + data (17 bytes).
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(16), w);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(20), h);
        BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(29), Crc(b.AsSpan(12, 17)));
        return b;
    }
}

/// <summary>
/// Thousands of malformed checkpoints, configs, images and data files through the library, each expected to be
/// accepted (where it may still be valid) or rejected with a one-line <see cref="UserInputException"/>; never another
/// exception, never a hang (10 s per case). Inputs that are invalid by construction must be rejected, inputs valid by
/// construction (BOM, CRLF, a reshaped tensor with the same bytes) must be read correctly. Seeds are fixed.
/// QUECC_MUTATION_SCALE=N multiplies the case counts; QUECC_MUTATION_TABLE=FILE collects the table rows.
/// </summary>
public class MutationTests(MutationFixture fx, ITestOutputHelper output) : IClassFixture<MutationFixture>
{
    private string CaseDir(string name)
    {
        var d = Path.Combine(fx.Root, name, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }

    private void Check(Tally t)
    {
        Harness.Report(t, output);
        Harness.AssertClean(t);
    }

    // ---------------------------------------------------------------- safetensors

    private static (string Header, byte[] Data) BaseSafetensors(string dir)
    {
        var path = Path.Combine(dir, "base.safetensors");
        Safetensors.Write(path,
        [
            new("a", torch.tensor(new float[] { 1, 2, 3, 4, 5, 6 }).reshape(2, 3)),
            new("b", torch.tensor(new long[] { 7, 8, 9, 10 })),
            new("c", torch.zeros(0, 5, dtype: bfloat16)),
            new("d", torch.tensor(new byte[] { 1, 2, 3 })),
        ], new Dictionary<string, string> { ["format"] = "pt" });
        var bytes = File.ReadAllBytes(path);
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        return (Encoding.UTF8.GetString(bytes, 8, n), bytes[(8 + n)..]);
    }

    private static byte[] Compose(byte[] header, byte[] data, ulong? length = null)
    {
        var b = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(b, length ?? (ulong)header.Length);
        header.CopyTo(b, 8);
        data.CopyTo(b, 8 + header.Length);
        return b;
    }

    private static string ReplaceEntryField(string header, string tensor, string field, string raw)
    {
        var o = JsonNode.Parse(header)!.AsObject();
        var e = o[tensor]!.AsObject();
        e.Remove(field);
        var rest = e.ToJsonString();
        o[tensor] = JsonNode.Parse("{}");
        return o.ToJsonString().Replace($"\"{tensor}\":{{}}", $"\"{tensor}\":{{\"{field}\":{raw}{(rest.Length > 2 ? "," + rest[1..^1] : "")}}}");
    }

    private static IEnumerable<MutationCase> SafetensorsCases(string dir, int count)
    {
        var (header, data) = BaseSafetensors(dir);
        header = header.TrimEnd();
        var names = new[] { "a", "b", "c", "d" };
        var r = new Random(15);
        string[] badDtypes = ["\"F33\"", "\"\"", "\"f32\"", "\"F8_E4M3\"", "\"I16\"", "\"U16\"", "null", "5", "[]", "\"\\ud800\"", "\"F3\\u0000\""];
        string[] badShapes =
        [
            "null", "\"2\"", "[-1]", "[1.5]", "[\"2\"]", "[9223372036854775807, 9223372036854775807]", "[0, 4611686018427387904, 4611686018427387904]",
            "[9223372036854775808]", "[1e400]", "[true]", "[[2]]", "{}", "[" + string.Join(",", Enumerable.Repeat("1", 40)) + "]",
            "[4611686018427387904, 0, 4611686018427387904]", "[99]",
        ];
        string[] badOffsets =
        [
            "null", "[\"0\", \"24\"]", "[0]", "[0, 24, 48]", "[24, 0]", "[-1, 23]", "[0, 1e20]", "[1.5, 25.5]", "[0, 9223372036854775807]",
            "[9223372036854775807, 9223372036854775807]", "[true, false]", "[null, null]", "{}", "\"0-24\"", "[18446744073709551615, 0]",
        ];
        (long B, long E) Range(string t) { var a = JsonNode.Parse(header)![t]!["data_offsets"]!.AsArray(); return ((long)a[0]!, (long)a[1]!); }
        for (int i = 0; i < count; i++)
        {
            var t = names[r.Next(names.Length)];
            var kind = r.Next(14);
            byte[] file;
            bool mustReject = true, mustAccept = false;
            string label;
            switch (kind)
            {
                case 0:
                {
                    var v = Values.Pick(r, badDtypes);
                    label = $"{t}.dtype = {v}";
                    file = Compose(Values.Utf8(ReplaceEntryField(header, t, "dtype", v)), data);
                    break;
                }
                case 1:
                {
                    var v = Values.Pick(r, badShapes);
                    label = $"{t}.shape = {v}";
                    file = Compose(Values.Utf8(ReplaceEntryField(header, t, "shape", v)), data);
                    break;
                }
                case 2:
                {
                    var (b, e) = Range(t);
                    string[] shifted = [$"[{b + 4}, {e + 4}]", $"[{b}, {e - 1}]", $"[{b}, {e + 1}]", b > 0 ? $"[{b - 1}, {e - 1}]" : $"[{b + 1}, {e + 1}]"];
                    var v = r.Next(2) == 0 ? Values.Pick(r, badOffsets) : Values.Pick(r, shifted);
                    label = $"{t}.data_offsets = {v}";
                    file = Compose(Values.Utf8(ReplaceEntryField(header, t, "data_offsets", v)), data);
                    break;
                }
                case 3:
                {
                    // Names that cannot be UTF-16 / UTF-8, empty, or repeated.
                    var which = r.Next(5);
                    label = $"name of {t}: variant {which}";
                    var h = header;
                    byte[] hb;
                    if (which == 0) hb = Values.Utf8(h.Replace($"\"{t}\":", "\"\\ud800x\":"));
                    else if (which == 1)
                    {
                        var s = Values.Utf8(h.Replace($"\"{t}\":", "\"@@\":"));
                        int at = Encoding.UTF8.GetString(s).IndexOf("@@", StringComparison.Ordinal);
                        byte[][] junk = [[0xC3, 0x28], [0xFF, 0xFE], [0xED, 0xA0], [0x80, 0x80]];
                        var j = junk[r.Next(junk.Length)];
                        s[at] = j[0]; s[at + 1] = j[1];
                        hb = s;
                    }
                    else if (which == 2) hb = Values.Utf8(h.Replace($"\"{t}\":", "\"\":"));
                    else if (which == 3)
                    {
                        var other = names.First(n => n != t);
                        hb = Values.Utf8(h.Replace($"\"{t}\":", $"\"{other}\":"));
                    }
                    else hb = Values.Utf8(h.Replace($"\"{t}\":", "\"__metadata__\":"));
                    file = Compose(hb, data);
                    break;
                }
                case 4:
                {
                    string[] metas = ["{\"format\": 5}", "{\"format\": null}", "{\"format\": {}}", "{\"format\": \"\\ud800\"}", "[]", "\"pt\"", "5",
                                      "{\"format\": \"pt\", \"format\": \"np\"}"];
                    var v = Values.Pick(r, metas);
                    label = $"__metadata__ = {v}";
                    var o = header.Replace("\"__metadata__\":{\"format\":\"pt\"}", "\"__metadata__\":" + v);
                    if (r.Next(8) == 0)
                    {
                        label = "__metadata__ twice";
                        o = "{\"__metadata__\":{\"x\":\"y\"}," + header[1..];
                    }
                    if (r.Next(8) == 0)
                    {
                        label = "__metadata__ with non-ASCII text";
                        o = header.Replace("\"__metadata__\":{\"format\":\"pt\"}", "\"__metadata__\":{\"format\":\"pt\",\"note\":\"é中\\u00e9\"}");
                        mustReject = false; mustAccept = true;
                    }
                    file = Compose(Values.Utf8(o), data);
                    break;
                }
                case 5:
                {
                    var o = JsonNode.Parse(header)!.AsObject();
                    o.Remove(t);
                    label = $"entry {t} removed";
                    // Removing the zero-byte tensor leaves the ranges contiguous: still a valid file.
                    if (t == "c") { mustReject = false; mustAccept = true; }
                    file = Compose(Values.Utf8(o.ToJsonString()), data);
                    break;
                }
                case 6:
                {
                    string[] roots = ["[]", "\"x\"", "1", "null", "{", "{}}", "{\"a\": 1}", "[" + header + "]"];
                    var v = Values.Pick(r, roots);
                    label = $"header = {v[..Math.Min(v.Length, 20)]}";
                    file = Compose(Values.Utf8(v), data);
                    break;
                }
                case 7:
                {
                    var hb = Values.Utf8(header);
                    ulong[] lens = [0, 1, (ulong)hb.Length - 1, (ulong)hb.Length + 1, (ulong)hb.Length + 8, ulong.MaxValue, (ulong)long.MaxValue, 100_000_001, (ulong)(hb.Length + data.Length + 1)];
                    var v = lens[r.Next(lens.Length)];
                    label = $"header length field {v}";
                    file = Compose(hb, data, v);
                    break;
                }
                case 8:
                {
                    var full = Compose(Values.Utf8(header), data);
                    int cut = r.Next(full.Length);
                    label = $"truncated to {cut} of {full.Length} bytes";
                    file = full[..cut];
                    break;
                }
                case 9:
                {
                    var extra = new byte[1 + r.Next(16)];
                    r.NextBytes(extra);
                    label = $"{extra.Length} trailing bytes";
                    file = Compose(Values.Utf8(header), [.. data, .. extra]);
                    break;
                }
                case 10:
                {
                    var hb = Values.Damage(r, Values.Utf8(header));
                    label = "damaged header bytes";
                    mustReject = false;
                    file = Compose(hb, data);
                    break;
                }
                case 11:
                {
                    // Arbitrary tensor bytes are valid data.
                    var d = (byte[])data.Clone();
                    if (d.Length > 0) d[r.Next(d.Length)] ^= (byte)(1 + r.Next(255));
                    label = "flipped data byte";
                    mustReject = false; mustAccept = true;
                    file = Compose(Values.Utf8(header), d);
                    break;
                }
                case 12:
                {
                    // Same bytes, another shape: valid.
                    label = "a reshaped to [3, 2] / [6] / [1, 6, 1]";
                    var v = new[] { "[3, 2]", "[6]", "[1, 6, 1]" }[r.Next(3)];
                    mustReject = false; mustAccept = true;
                    file = Compose(Values.Utf8(ReplaceEntryField(header, "a", "shape", v)), data);
                    break;
                }
                default:
                {
                    string[] keys = ["\"dtype\": \"F32\", \"dtype\": \"I32\"", "\"shape\": [6], \"shape\": [2, 3]"];
                    var dup = keys[r.Next(keys.Length)];
                    label = $"a with a repeated key ({dup})";
                    var o = header.Replace("\"a\":{", "\"a\":{" + dup + ",");
                    file = Compose(Values.Utf8(o), data);
                    break;
                }
            }
            var path = Path.Combine(dir, $"case{i}.safetensors");
            var bytes = file;
            yield return new MutationCase(label, mustReject, () =>
            {
                File.WriteAllBytes(path, bytes);
                try
                {
                    using var f = Safetensors.Open(path);
                    foreach (var name in f.Tensors.Keys) f.Read(name).Dispose();
                    if (mustAccept && f.Tensors.Count < 3) throw new MishandledException($"{f.Tensors.Count} tensors read");
                }
                finally { File.Delete(path); }
            }, mustAccept);
        }
    }

    [Fact]
    public void Malformed_safetensors_are_rejected_with_one_line()
    {
        var dir = CaseDir("st");
        Check(Harness.RunAll("safetensors header/data (in-process)", SafetensorsCases(dir, Harness.Count(2000))));
    }

    // ---------------------------------------------------------------- PyTorch .bin (torch.save zip, weights-only unpickler)

    private static byte[] RewriteEntry(byte[] zipBytes, Func<string, bool> which, Func<byte[], byte[]> change)
    {
        using var ms = new MemoryStream();
        ms.Write(zipBytes);
        using (var zip = new System.IO.Compression.ZipArchive(ms, System.IO.Compression.ZipArchiveMode.Update, leaveOpen: true))
        {
            var entry = zip.Entries.First(e => which(e.FullName));
            byte[] data;
            using (var s = entry.Open()) { using var buf = new MemoryStream(); s.CopyTo(buf); data = buf.ToArray(); }
            var name = entry.FullName;
            entry.Delete();
            var fresh = zip.CreateEntry(name, System.IO.Compression.CompressionLevel.NoCompression);
            using var w = fresh.Open();
            w.Write(change(data));
        }
        return ms.ToArray();
    }

    [Fact]
    public void Malformed_pytorch_bin_files_are_rejected_with_one_line()
    {
        var source = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "checkpoints", "mm_projector.bin"));
        var dir = CaseDir("bin");
        var r = new Random(156);
        var cases = new List<MutationCase>();
        for (int i = 0; i < Harness.Count(300); i++)
        {
            byte[] file;
            string label;
            bool mustReject = false;
            switch (r.Next(5))
            {
                case 0:
                {
                    int cut = r.Next(source.Length);
                    (file, label, mustReject) = (source[..cut], $"truncated at {cut}", true);
                    break;
                }
                case 1:
                    (file, label) = (Values.Damage(r, source), "damaged zip bytes");
                    break;
                case 2:
                {
                    var seed = r.Next();
                    (file, label) = (RewriteEntry(source, n => n.EndsWith("/data.pkl"), d => Values.Damage(new Random(seed), d)), $"damaged data.pkl (seed {seed})");
                    break;
                }
                case 3:
                {
                    int keep = r.Next(64);
                    (file, label, mustReject) = (RewriteEntry(source, n => n.EndsWith("/data/0"), d => d[..Math.Min(keep, d.Length)]), $"storage 0 cut to {keep} bytes", true);
                    break;
                }
                default:
                {
                    var b = (byte[])source.Clone();
                    b[r.Next(b.Length)] ^= (byte)(1 << r.Next(8));
                    (file, label) = (b, "flipped bit");
                    break;
                }
            }
            var path = Path.Combine(dir, $"case{i}.bin");
            var bytes = file;
            cases.Add(new MutationCase(label, mustReject, () =>
            {
                File.WriteAllBytes(path, bytes);
                try
                {
                    using var f = PyTorchFile.Open(path);
                    foreach (var name in f.Tensors.Keys) f.Read(name).Dispose();
                }
                finally { File.Delete(path); }
            }));
        }
        Check(Harness.RunAll("PyTorch .bin (torch.save zip; open + read)", cases));
    }

    // ---------------------------------------------------------------- projector config.json

    private const string TinyProjector = """
        {"mm_projector_type": "mlp2x_gelu", "mm_hidden_size": 16, "hidden_size": 32, "mm_vision_token_compression_type": "quecc",
         "mm_vision_output_token_count": 16, "mm_vision_output_text_embedding_size": 32, "mm_vision_token_compression_kernel_size": 2,
         "mm_vision_token_compression_stride": 2, "mm_vision_multi_level_size": 64, "mm_vision_token_compression_num_heads": 4}
        """;

    /// <summary>Key, JSON kind, and whether null / absence means a default (so null may be valid).</summary>
    private static readonly (string Key, char Kind, bool Nullable)[] ProjectorKeys =
    [
        ("mm_projector_type", 's', false), ("mm_hidden_size", 'i', false), ("hidden_size", 'i', false),
        ("mm_vision_token_compression_type", 's', true), ("mm_vision_output_token_count", 'i', false),
        ("mm_vision_output_text_embedding_size", 'i', false), ("mm_vision_token_compression_kernel_size", 'i', false),
        ("mm_vision_token_compression_stride", 'i', true), ("mm_vision_multi_level_size", 'i', true),
        ("mm_vision_token_compression_num_heads", 'i', true),
    ];

    private static readonly string[] BadProjectorTypes = ["\"mlp0x_gelu\"", "\"mlp2x_relu\"", "\"\"", "\"mlp99999999999x_gelu\"", "\"mlp65x_gelu\"", "\"MLP2X_GELU\"", "\"identity\""];
    private static readonly string[] BadCompressionTypes = ["\"qformer\"", "\"\"", "\"QUECC\"", "\"quecc \""];
    private static readonly string[] OtherProjectorTypes = ["\"linear\"", "\"mlp3x_gelu\"", "\"mlp1x_gelu\""];
    private static readonly string[] OtherCompressionTypes = ["\"avgpool\"", "\"none\"", "\"tokenpacker\"", "\"quecc_noquery\""];

    /// <summary>JSON-level mutations of a flat config: wrong types, bad ranges, repeats, removals, other roots, byte damage.</summary>
    private static (string Text, string Label, bool MustReject, bool MustAccept) MutateConfig(Random r, string json, (string Key, char Kind, bool Nullable)[] keys,
        Func<string, string, bool?>? special = null)
    {
        var (key, kind, nullable) = keys[r.Next(keys.Length)];
        var choice = r.Next(10);
        if (choice is 3 or 4 && kind != 'i') choice = 0;
        switch (choice)
        {
            case 0 or 1 or 2:
            {
                var pool = kind switch { 'i' => Values.WrongForInt, 'f' => Values.WrongForFloat, 'b' => Values.WrongForBool, _ => Values.WrongForString };
                var v = Values.Pick(r, pool);
                bool must = !(v == "null" && nullable);
                if (special?.Invoke(key, v) is { } s) must = s;
                return (Values.Set(json, key, v), $"{key} = {v}", must, false);
            }
            case 3 or 4:
            {
                var v = Values.Pick(r, Values.BadInt);
                bool must = special?.Invoke(key, v) ?? true;
                return (Values.Set(json, key, v), $"{key} = {v}", must, false);
            }
            case 5:
            {
                string v = kind == 'i' ? r.Next(1, 41).ToString() : kind == 'f' ? (r.NextDouble() * 10).ToString("R", System.Globalization.CultureInfo.InvariantCulture) : kind == 'b' ? "true" : "\"x\"";
                return (Values.Set(json, key, v), $"{key} = {v} (may be valid)", false, false);
            }
            case 6: return (Values.Duplicate(json, key), $"{key} twice", true, false);
            case 7:
            {
                var o = JsonNode.Parse(json)!.AsObject();
                o.Remove(key);
                return (o.ToJsonString(), $"{key} removed", false, false);
            }
            case 8:
            {
                string[] roots = ["[]", "null", "1", "\"x\"", "", "{", "[" + json + "]"];
                var v = Values.Pick(r, roots);
                return (v, $"root = {v[..Math.Min(20, v.Length)]}", true, false);
            }
            default:
                if (r.Next(4) == 0) return ("\uFEFF" + json.Replace("\n", "\r\n"), "BOM + CRLF (valid)", false, true);
                return (Encoding.UTF8.GetString(Values.Damage(r, Values.Utf8(json))), "damaged bytes", false, false);
        }
    }

    private static IEnumerable<MutationCase> ProjectorCases(string dir, int count)
    {
        var r = new Random(151);
        for (int i = 0; i < count; i++)
        {
            var (text, label, mustReject, mustAccept) = MutateConfig(r, TinyProjector, ProjectorKeys);
            if (label.StartsWith("mm_projector_type") && r.Next(2) == 0)
            {
                var v = r.Next(3) == 0 ? Values.Pick(r, OtherProjectorTypes) : Values.Pick(r, BadProjectorTypes);
                (text, label, mustReject) = (Values.Set(TinyProjector, "mm_projector_type", v), $"mm_projector_type = {v}", !OtherProjectorTypes.Contains(v));
            }
            if (label.StartsWith("mm_vision_token_compression_type") && r.Next(2) == 0)
            {
                var v = r.Next(2) == 0 ? Values.Pick(r, OtherCompressionTypes) : Values.Pick(r, BadCompressionTypes);
                (text, label, mustReject) = (Values.Set(TinyProjector, "mm_vision_token_compression_type", v), $"mm_vision_token_compression_type = {v}", !OtherCompressionTypes.Contains(v));
            }
            var path = Path.Combine(dir, $"case{i}.json");
            var body = text;
            yield return new MutationCase(label, mustReject, () =>
            {
                File.WriteAllText(path, body, new UTF8Encoding(false));
                try
                {
                    var cfg = ProjectorConfig.Load(path);
                    using var projector = new MultimodalProjector(cfg);
                    long n = cfg.InputTokenCount ?? 4;
                    if (n * (cfg.Width + cfg.MultiLevelSize) < 4_000_000)
                    {
                        using var _ = torch.no_grad();
                        var x = torch.randn(1, n, cfg.Width);
                        var multi = cfg.NeedsMultiLevel ? torch.randn(1, n, cfg.MultiLevelSize) : null;
                        var txt = cfg.NeedsText ? torch.randn(1, 1, cfg.TextSize) : null;
                        var y = projector.Forward(x, multi, txt);
                        if (y.shape[^1] != cfg.LlmHidden) throw new MishandledException($"output width {y.shape[^1]}");
                    }
                }
                finally { File.Delete(path); }
            }, mustAccept);
        }
    }

    [Fact]
    public void Malformed_projector_configs_are_rejected_with_one_line()
    {
        var dir = CaseDir("proj");
        Check(Harness.RunAll("projector config.json (load + build + forward)", ProjectorCases(dir, Harness.Count(400))));
    }

    // ---------------------------------------------------------------- LLaVA / decoder config.json

    private static readonly (string Key, char Kind, bool Nullable)[] LlavaKeys =
    [
        ("vocab_size", 'i', false), ("hidden_size", 'i', false), ("intermediate_size", 'i', false), ("num_hidden_layers", 'i', false),
        ("num_attention_heads", 'i', false), ("num_key_value_heads", 'i', true), ("max_position_embeddings", 'i', false),
        ("rms_norm_eps", 'f', false), ("rope_theta", 'f', false), ("tie_word_embeddings", 'b', false), ("torch_dtype", 's', true),
        ("model_type", 's', false), ("hidden_act", 's', false), ("bos_token_id", 'i', true), ("eos_token_id", 'i', true),
        ("mm_vision_select_layer", 'i', false), ("image_aspect_ratio", 's', false), ("conversation_template", 's', true),
        ("mm_vision_select_feature", 's', false), ("mm_projector_type", 's', false), ("mm_hidden_size", 'i', false),
        ("mm_vision_output_token_count", 'i', false), ("mm_vision_token_compression_kernel_size", 'i', false),
    ];

    /// <summary>Values that are fine for some keys despite looking bad (index 0 and −1 of the hidden states, a large context).</summary>
    private static bool? LlavaSpecial(string key, string v) => (key, v) switch
    {
        ("mm_vision_select_layer", "0" or "-1") => false,
        ("max_position_embeddings", "2147483647") => false,
        ("bos_token_id" or "eos_token_id", "0") => false,
        ("rope_theta" or "rms_norm_eps", "1e999") => true,
        ("torch_dtype" or "conversation_template", "null") => false,
        _ => null,
    };

    [Fact]
    public void Malformed_llava_configs_are_rejected_with_one_line()
    {
        var baseJson = File.ReadAllText(Path.Combine(fx.ModelDir, "config.json"));
        var r = new Random(152);
        var cases = new List<MutationCase>();
        for (int i = 0; i < Harness.Count(120); i++)
        {
            var (text, label, mustReject, mustAccept) = MutateConfig(r, baseJson, LlavaKeys, LlavaSpecial);
            var body = text;
            cases.Add(new MutationCase(label, mustReject, () =>
            {
                var dir = Path.Combine(fx.Root, "llava-cases", Guid.NewGuid().ToString("N"));
                Directory.CreateDirectory(dir);
                try
                {
                    foreach (var entry in Directory.EnumerateFileSystemEntries(fx.ModelDir))
                        if (Path.GetFileName(entry) != "config.json")
                            File.CreateSymbolicLink(Path.Combine(dir, Path.GetFileName(entry)), entry);
                    File.WriteAllText(Path.Combine(dir, "config.json"), body, new UTF8Encoding(false));
                    LlavaEntryPoints.Generate(dir, null, fx.ImagePath, "What is in the image?", maxNewTokens: 2);
                }
                finally { Directory.Delete(dir, true); }
            }, mustAccept));
        }
        Check(Harness.RunAll("LLaVA / decoder config.json (load + generate)", cases));
    }

    // ---------------------------------------------------------------- CLIP vision_tower/config.json

    private static readonly (string Key, char Kind, bool Nullable)[] ClipKeys =
    [
        ("hidden_size", 'i', false), ("intermediate_size", 'i', false), ("num_hidden_layers", 'i', false), ("num_attention_heads", 'i', false),
        ("num_channels", 'i', false), ("image_size", 'i', false), ("patch_size", 'i', false), ("hidden_act", 's', false), ("layer_norm_eps", 'f', false),
    ];

    [Fact]
    public void Malformed_clip_configs_are_rejected_with_one_line()
    {
        var baseJson = File.ReadAllText(Path.Combine(fx.ModelDir, "vision_tower", "config.json"));
        var dir = CaseDir("clip");
        var r = new Random(153);
        var cases = new List<MutationCase>();
        for (int i = 0; i < Harness.Count(150); i++)
        {
            var (text, label, mustReject, mustAccept) = MutateConfig(r, baseJson, ClipKeys,
                (k, v) => k == "layer_norm_eps" && v == "1e999" ? true : null);
            var path = Path.Combine(dir, $"case{i}.json");
            var body = text;
            cases.Add(new MutationCase(label, mustReject, () =>
            {
                File.WriteAllText(path, body, new UTF8Encoding(false));
                try
                {
                    var cfg = ClipVisionConfig.Load(path);
                    using var tower = new ClipVisionModel(cfg);
                    if ((long)cfg.ImageSize * cfg.ImageSize <= 128 * 128 && (long)cfg.NumPositions * cfg.HiddenSize < 4_000_000)
                    {
                        using var _ = torch.no_grad();
                        var y = tower.forward(torch.zeros(1, 3, cfg.ImageSize, cfg.ImageSize));
                        if (y.shape[^1] != cfg.HiddenSize) throw new MishandledException($"output width {y.shape[^1]}");
                    }
                }
                finally { File.Delete(path); }
            }, mustAccept));
        }
        Check(Harness.RunAll("CLIP vision_tower/config.json (load + build + forward)", cases));
    }

    // ---------------------------------------------------------------- images

    [Fact]
    public void Malformed_images_are_rejected_with_one_line()
    {
        var img = Images.Noise(24, 16, 2);
        var png = Images.Encode(img, SKEncodedImageFormat.Png);
        var bases = new (string Name, byte[] Bytes, int ValidTail)[]
        {
            // ValidTail: how many trailing bytes may go missing with the image still complete (PNG: IEND; JPEG: EOI).
            ("png", png, 12), ("jpeg", Images.Encode(img, SKEncodedImageFormat.Jpeg), 2), ("webp", Images.Encode(img, SKEncodedImageFormat.Webp), 0),
            ("bmp", Images.Bmp(img), 0), ("gif", Images.Gif, 1),
        };
        var dir = CaseDir("img");
        var r = new Random(154);
        var cases = new List<MutationCase>();
        for (int i = 0; i < Harness.Count(400); i++)
        {
            var (name, b, tail) = bases[r.Next(bases.Length)];
            byte[] file;
            string label;
            bool mustReject = true, mustAccept = false;
            switch (r.Next(6))
            {
                case 0 or 1:
                {
                    int cut = r.Next(b.Length - tail);
                    (file, label) = (b[..cut], $"{name} cut at {cut} of {b.Length}");
                    break;
                }
                case 2:
                {
                    uint[] dims = [20000, 65535, 1u << 30, 0, 0x7FFFFFFF, 0x80000000, 16385];
                    uint w = dims[r.Next(dims.Length)], h = dims[r.Next(dims.Length)];
                    (file, label) = (Images.WithDims(png, w, h), $"png declaring {w}x{h}");
                    if (w != 0 && h != 0 && (ulong)w * h <= RgbImage.DefaultMaxPixels && w <= 20000 && h <= 20000) label += " (pixel data too short)";
                    break;
                }
                case 3:
                {
                    byte[][] others =
                    [
                        [], "II*\0\u0008\0\0\0junkjunk"u8.ToArray(), "MM\0*\0\0\0\u0008junk"u8.ToArray(), "%PDF-1.4\n%junk"u8.ToArray(),
                        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>"u8.ToArray(), "<?xml version=\"1.0\"?><svg/>"u8.ToArray(),
                        "P6\n1 1\n255\n\0\0\0"u8.ToArray(), "\0\0\0\u0018ftypheic\0\0\0\0heicmif1"u8.ToArray(), "just text, not an image"u8.ToArray(),
                        Enumerable.Range(0, 64).Select(k => (byte)(0xAB ^ k * 37)).ToArray(),
                    ];
                    var pick = r.Next(others.Length);
                    (file, label) = (others[pick], $"other format #{pick}");
                    break;
                }
                case 4:
                    (file, label, mustReject) = (Values.Damage(r, b), $"{name} damaged", false);
                    break;
                default:
                    (file, label, mustReject, mustAccept) = (b, $"{name} intact", false, true);
                    break;
            }
            var path = Path.Combine(dir, $"case{i}.{name}");
            var bytes = file;
            var expected = name == "gif" ? (1, 1) : (24, 16);
            cases.Add(new MutationCase(label, mustReject, () =>
            {
                File.WriteAllBytes(path, bytes);
                try
                {
                    var loaded = RgbImage.Load(path);
                    if (mustAccept && (loaded.Width, loaded.Height) != expected) throw new MishandledException($"{loaded.Width}x{loaded.Height}");
                    if (mustAccept && name is "png" or "bmp" && !loaded.Pixels.AsSpan().SequenceEqual(img.Pixels)) throw new MishandledException("pixels differ from the lossless original");
                }
                finally { File.Delete(path); }
            }, mustAccept));
        }
        Check(Harness.RunAll("images (load)", cases));
    }

    // ---------------------------------------------------------------- LLaVA conversation JSON

    [Fact]
    public void Malformed_llava_json_records_are_skipped_or_rejected_with_one_line()
    {
        var dir = CaseDir("json");
        File.Copy(fx.ImagePath, Path.Combine(dir, "a.png"));
        JsonObject Record(int k) => JsonNode.Parse($$"""
            {"id": "r{{k}}", "image": "a.png", "conversations": [{"from": "human", "value": "<image>\nWhat colour is it?"}, {"from": "gpt", "value": "Red {{k}}."}]}
            """)!.AsObject();
        string[] badImage = ["5", "null", "\"\"", "\"missing.png\"", "[]", "\"\\ud800.png\"", "\"../\"", "{}"];
        string[] badConversations =
        [
            "null", "5", "\"x\"", "[]", "[{\"from\": \"human\", \"value\": \"hi\"}]", "[{\"from\": \"gpt\", \"value\": \"a\"}, {\"from\": \"human\", \"value\": \"b\"}]",
            "[{\"from\": 5, \"value\": \"a\"}, {\"from\": \"gpt\", \"value\": \"b\"}]", "[{\"from\": \"human\", \"value\": null}, {\"from\": \"gpt\", \"value\": \"b\"}]",
            "[{\"from\": \"human\", \"value\": \"<image> <image> two\"}, {\"from\": \"gpt\", \"value\": \"b\"}]", "[{\"from\": \"human\", \"value\": \"<image>\"}, {\"from\": \"gpt\", \"value\": \"b\"}]",
            "[{\"from\": \"human\", \"value\": \"<image>\\nq\"}, {\"from\": \"gpt\", \"value\": \"  \"}]", "[{\"from\": \"robot\", \"value\": \"q\"}, {\"from\": \"gpt\", \"value\": \"b\"}]",
            "[{\"from\": \"human\", \"value\": \"q \\udc00\"}, {\"from\": \"gpt\", \"value\": \"b\"}]",
        ];
        var r = new Random(155);
        var cases = new List<MutationCase>();
        for (int i = 0; i < Harness.Count(300); i++)
        {
            var records = Enumerable.Range(0, 3).Select(k => (JsonNode)Record(k)).ToArray();
            int target = r.Next(3);
            string label;
            string? text = null;
            byte[]? raw = null;
            bool fileMustFail = false, mustAccept = false;
            int? recordMustSkip = target;
            switch (r.Next(8))
            {
                case 0:
                {
                    var v = Values.Pick(r, badImage);
                    label = $"record {target} image = {v}";
                    text = "[" + string.Join(",", records.Select((x, k) => k == target ? Values.Set(x.ToJsonString(), "image", v) : x.ToJsonString())) + "]";
                    break;
                }
                case 1:
                {
                    var v = Values.Pick(r, badConversations);
                    label = $"record {target} conversations = {v}";
                    text = "[" + string.Join(",", records.Select((x, k) => k == target ? Values.Set(x.ToJsonString(), "conversations", v) : x.ToJsonString())) + "]";
                    break;
                }
                case 2:
                {
                    string[] whole = ["5", "null", "\"x\"", "[]", "{}"];
                    var v = Values.Pick(r, whole);
                    label = $"record {target} = {v}";
                    text = "[" + string.Join(",", records.Select((x, k) => k == target ? v : x.ToJsonString())) + "]";
                    break;
                }
                case 3:
                {
                    var other = (target + 1) % 3;
                    label = $"record {target} repeats the id of record {other}";
                    // The later of the two is the copy.
                    recordMustSkip = Math.Max(target, other);
                    records[target]!["id"] = $"r{other}";
                    text = "[" + string.Join(",", records.Select(x => x.ToJsonString())) + "]";
                    break;
                }
                case 4:
                {
                    label = $"record {target} has the key image twice";
                    text = "[" + string.Join(",", records.Select((x, k) => k == target ? Values.Duplicate(x.ToJsonString(), "image") : x.ToJsonString())) + "]";
                    break;
                }
                case 5:
                {
                    var good = "[\n" + string.Join(",\n", records.Select(x => x.ToJsonString())) + "\n]\n";
                    var which = r.Next(4);
                    recordMustSkip = null;
                    if (which == 0) { label = "UTF-8 BOM"; raw = [0xEF, 0xBB, 0xBF, .. Values.Utf8(good)]; mustAccept = true; }
                    else if (which == 1) { label = "CRLF line ends"; text = good.Replace("\n", "\r\n"); mustAccept = true; }
                    else if (which == 2)
                    {
                        label = "invalid UTF-8 inside a value";
                        var b = Values.Utf8(good.Replace("What colour", "What @@lour"));
                        int at = Encoding.UTF8.GetString(b).IndexOf("@@", StringComparison.Ordinal);
                        b[at] = 0xC3; b[at + 1] = 0x28;
                        raw = b; fileMustFail = true;
                    }
                    else { label = "NaN literal"; text = good.Replace("\"id\": \"r0\"", "\"id\": \"r0\", \"weight\": NaN").Replace("\"id\":\"r0\"", "\"id\":\"r0\",\"weight\":NaN"); fileMustFail = true; }
                    break;
                }
                case 6:
                {
                    var good = "[" + string.Join(",", records.Select(x => x.ToJsonString())) + "]";
                    int cut = r.Next(good.Length - 1);
                    label = $"truncated at {cut}";
                    text = good[..cut];
                    fileMustFail = true; recordMustSkip = null;
                    break;
                }
                default:
                {
                    var good = "[" + string.Join(",", records.Select(x => x.ToJsonString())) + "]";
                    label = "damaged bytes";
                    raw = Values.Damage(r, Values.Utf8(good));
                    recordMustSkip = null;
                    break;
                }
            }
            var path = Path.Combine(dir, $"case{i}.json");
            var bytes = raw ?? Values.Utf8(text!);
            var skipIndex = recordMustSkip;
            cases.Add(new MutationCase(label, fileMustFail, () =>
            {
                File.WriteAllBytes(path, bytes);
                try
                {
                    var (recs, skipped) = LlavaJson.Read(path, dir);
                    if (mustAccept && (recs.Count != 3 || recs[2].Turns[0].Assistant != "Red 2."))
                        throw new MishandledException($"{recs.Count} records read");
                    if (recs.Count + skipped.Count > 3 && !label.StartsWith("damaged")) throw new MishandledException($"{recs.Count + skipped.Count} records from 3");
                    if (skipIndex is { } k)
                    {
                        var skip = skipped.FirstOrDefault(s => s.Index == k) ?? throw new MalformedAcceptedException($"record {k} was kept");
                        throw new RecordSkippedException(skip.Reason);
                    }
                }
                finally { File.Delete(path); }
            }, mustAccept));
        }
        Check(Harness.RunAll("LLaVA conversation JSON (read; a skipped record counts as a reject)", cases));
    }
}
