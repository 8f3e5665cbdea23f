using System.Buffers.Binary;
using System.Text;
using QueCC.Model.Checkpoints;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Checkpoints;

public sealed class SafetensorsTests : IDisposable
{
    private readonly string dir = Directory.CreateTempSubdirectory("quecc-st-").FullName;

    public void Dispose() => Directory.Delete(dir, true);

    /// <summary>A file with a hand-written header: length field (default: the header's true length), header text, data bytes.</summary>
    private string Raw(string name, string header, int dataBytes, ulong? lengthField = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, lengthField ?? (ulong)h.Length);
        h.CopyTo(bytes, 8);
        var path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static void AssertRejected(string path, params string[] problem)
    {
        var e = Assert.ThrowsAny<CheckpointFormatException>(() => { using var f = Safetensors.Open(path); });
        Assert.StartsWith(path + ":", e.Message);
        foreach (var p in problem) Assert.Contains(p, e.Message);
    }

    [Fact]
    public void Rejects_header_length_beyond_the_limit() =>
        AssertRejected(Raw("huge.safetensors", "{}", 0, lengthField: 1UL << 40), "header length 1099511627776", "too large");

    [Fact]
    public void Rejects_header_length_beyond_the_file() =>
        AssertRejected(Raw("short.safetensors", "{}", 4, lengthField: 1000), "header length 1000", "beyond the end of the file");

    [Fact]
    public void Rejects_a_file_shorter_than_the_length_field()
    {
        var path = Path.Combine(dir, "tiny.safetensors");
        File.WriteAllBytes(path, [1, 2, 3]);
        AssertRejected(path, "too short");
    }

    [Fact]
    public void Rejects_bad_json() =>
        AssertRejected(Raw("json.safetensors", "{\"a\": {\"dtype\": ", 0), "not valid JSON");

    [Fact]
    public void Rejects_offsets_outside_the_file() =>
        AssertRejected(Raw("outside.safetensors", """{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 8), "'w'", "outside the data section of 8 bytes");

    [Fact]
    public void Rejects_overlapping_offsets() =>
        AssertRejected(Raw("overlap.safetensors",
            """{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}""", 24), "'a'", "'b'", "overlap");

    [Fact]
    public void Rejects_shape_and_byte_count_mismatch() =>
        AssertRejected(Raw("count.safetensors", """{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}""", 16), "'w'", "needs 12 bytes", "span 16", "mismatch");

    [Fact]
    public void Rejects_dtype_shape_mismatch_of_a_half_tensor() =>
        AssertRejected(Raw("half.safetensors", """{"w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,16]}}""", 16), "'w'", "BF16", "needs 8 bytes");

    [Fact]
    public void Rejects_unknown_dtype() =>
        AssertRejected(Raw("dtype.safetensors", """{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,1]}}""", 1), "'w'", "unknown dtype 'Q4'", "F32");

    [Fact]
    public void Rejects_a_truncated_file()
    {
        using var scope = torch.NewDisposeScope();
        var path = Path.Combine(dir, "trunc.safetensors");
        Safetensors.Write(path, [new("a", torch.ones(4)), new("b", torch.ones(8))]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^5]);
        AssertRejected(path, "'b'", "truncated");
    }

    [Fact]
    public void Reads_every_dtype_written_by_pytorch()
    {
        using var scope = torch.NewDisposeScope();
        using var f = Safetensors.Open(Path.Combine(AppContext.BaseDirectory, "Fixtures", "compressors", "dtypes.safetensors"));
        Assert.Equal("python3-torch", f.Metadata["source"]);
        Assert.Equal(new[] { 1.5f, -2.25f, 3f, 1e-3f }, f.Read("f32").data<float>().ToArray());
        Assert.Equal(new long[] { 2, 2 }, f.Read("f32").shape);
        Assert.Equal(new[] { 0.5f, -1f, 65504f }, f.Read("f16").to(float32).data<float>().ToArray());
        Assert.Equal(ScalarType.BFloat16, f.Read("bf16").dtype);
        Assert.Equal(new[] { 1f, -3.5f, 256f }, f.Read("bf16").to(float32).data<float>().ToArray());
        Assert.Equal(Math.PI, f.Read("f64").data<double>()[0]);
        Assert.Equal(new[] { -(1L << 40), 7L }, f.Read("i64").data<long>().ToArray());
        Assert.Equal(new[] { -5, 1 << 30 }, f.Read("i32").data<int>().ToArray());
        Assert.Equal(new byte[] { 0, 200, 255 }, f.Read("u8").data<byte>().ToArray());
        Assert.Equal(new[] { true, false, true }, f.Read("bool").data<bool>().ToArray());
        var scalar = f.Read("scalar");
        Assert.Empty(scalar.shape);
        Assert.Equal(2.5f, scalar.item<float>());
    }

    [Fact]
    public void Round_trips_every_dtype_and_metadata()
    {
        using var scope = torch.NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = torch.randn(3, 5),
            ["f16"] = torch.randn(7).to(float16),
            ["bf16"] = torch.randn(2, 3).to(bfloat16),
            ["f64"] = torch.randn(4, dtype: float64),
            ["i64"] = torch.tensor(new long[] { long.MinValue, 0, long.MaxValue }),
            ["i32"] = torch.tensor(new[] { int.MinValue, 42 }),
            ["u8"] = torch.tensor(new byte[] { 1, 128, 255 }),
            ["bool"] = torch.tensor(new[] { false, true }),
            ["empty"] = torch.zeros(0, 4),
            ["transposed"] = torch.arange(6, dtype: float32).view(2, 3).t(), // non-contiguous input
        };
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode ok" };
        var path = Path.Combine(dir, "roundtrip.safetensors");
        Safetensors.Write(path, tensors, meta);
        using var f = Safetensors.Open(path);
        Assert.Equal(meta, f.Metadata);
        Assert.Equal(tensors.Keys.Order(), f.Tensors.Keys.Order());
        foreach (var (k, t) in tensors)
        {
            var r = f.Read(k);
            Assert.Equal(t.dtype, r.dtype);
            Assert.Equal(t.shape, r.shape);
            Assert.True(TensorAssert.Same(t, r), k);
        }
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(path).AsSpan(0, 8));
        Assert.Equal(0UL, headerLength % 8); // data section 8-byte aligned
    }

    [Fact]
    public void Failed_write_leaves_the_existing_file_and_no_temp_file()
    {
        using var scope = torch.NewDisposeScope();
        var path = Path.Combine(dir, "keep.safetensors");
        Safetensors.Write(path, [new("a", torch.ones(2))]);
        var before = File.ReadAllBytes(path);
        Assert.Throws<ArgumentException>(() => Safetensors.Write(path, [new("a", torch.ones(2)), new("b", torch.ones(2, dtype: int16))]));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(dir));
    }

    [Fact]
    public void Loads_a_sharded_checkpoint_from_index_or_folder()
    {
        using var scope = torch.NewDisposeScope();
        Safetensors.Write(Path.Combine(dir, "model-00001-of-00002.safetensors"), [new("a", torch.full(2, 1f)), new("b", torch.full(3, 2f))]);
        Safetensors.Write(Path.Combine(dir, "model-00002-of-00002.safetensors"), [new("c", torch.full(4, 3f))]);
        File.WriteAllText(Path.Combine(dir, Checkpoint.IndexFileName), """
            {"metadata": {"total_size": 36},
             "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}}
            """);
        foreach (var source in new[] { dir, Path.Combine(dir, Checkpoint.IndexFileName) })
        {
            using var ckpt = Checkpoint.Open(source);
            Assert.Equal(["a", "b", "c"], ckpt.Keys.Order());
            Assert.Equal(new long[] { 4 }, ckpt.Info("c").Shape);
            Assert.Equal(3f, ckpt.Read("c")[3].item<float>());
            Assert.Equal(2f, ckpt.Read("b")[0].item<float>());
        }
    }

    [Fact]
    public void Sharded_index_errors_name_the_index_and_the_shard()
    {
        using var scope = torch.NewDisposeScope();
        Safetensors.Write(Path.Combine(dir, "s1.safetensors"), [new("a", torch.ones(2))]);
        var index = Path.Combine(dir, Checkpoint.IndexFileName);
        File.WriteAllText(index, """{"weight_map": {"a": "s1.safetensors", "z": "s2.safetensors"}}""");
        var e = Assert.Throws<CheckpointFormatException>(() => Checkpoint.Open(index));
        Assert.Contains(index, e.Message);
        Assert.Contains("'s2.safetensors'", e.Message);

        File.WriteAllText(index, """{"weight_map": {"a": "s1.safetensors", "q": "s1.safetensors"}}""");
        e = Assert.Throws<CheckpointFormatException>(() => Checkpoint.Open(index));
        Assert.Contains("'q'", e.Message);

        File.WriteAllText(index, """{"weight_map": {"a": "../s1.safetensors"}}""");
        e = Assert.Throws<CheckpointFormatException>(() => Checkpoint.Open(index));
        Assert.Contains("not a plain file name", e.Message);
    }
}
