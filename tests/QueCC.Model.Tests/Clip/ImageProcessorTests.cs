using QueCC.Model.Clip;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Tests.Clip;

public class ImageProcessorTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "images", name);

    private static readonly float[] Mean = { 0.48145466f, 0.4578275f, 0.40821073f };
    private static readonly float[] Std = { 0.26862954f, 0.26130258f, 0.27577711f };

    private static float Normalised(byte v, int c) => ((float)(v / 255.0) - Mean[c]) / Std[c];

    [Theory]
    [InlineData(20, 15)]  // shrink both sides (antialiased support)
    [InlineData(90, 66)]  // enlarge both sides
    [InlineData(21, 16)]  // the shortest-edge size for 16
    [InlineData(50, 16)]  // vertical pass only
    [InlineData(7, 37)]   // horizontal pass only, strong shrink
    public void Bicubic_resize_is_byte_identical_to_PIL(int w, int h)
    {
        var src = RgbImage.Load(Fixture("rand_50x37.png"));
        var expected = RgbImage.Load(Fixture($"pil_bicubic_50x37_to_{w}x{h}.png"));
        var actual = PilBicubic.Resize(src, w, h);
        Assert.Equal(expected.Width, actual.Width);
        Assert.Equal(expected.Height, actual.Height);
        int mismatches = expected.Pixels.Zip(actual.Pixels).Count(p => p.First != p.Second);
        Assert.Equal(0, mismatches);
    }

    [Theory]
    [InlineData(500, 375, 448, 336)]
    [InlineData(375, 500, 336, 448)]
    [InlineData(640, 427, 503, 336)] // int(336*640/427) = int(503.6) = 503: truncation, not rounding
    [InlineData(336, 336, 336, 336)]
    public void Shortest_edge_size_follows_HF(int w, int h, int ew, int eh)
        => Assert.Equal((ew, eh), ClipImageProcessor.ShortestEdgeSize(w, h, 336));

    [Fact]
    public void Constant_image_normalises_to_hand_computed_values()
    {
        using var _ = NewDisposeScope();
        var img = RgbImage.Filled(500, 400, 200, 30, 90);
        var t = ClipImageProcessor.Preprocess(img, ImageAspectMode.CenterCrop);
        Assert.Equal(new long[] { 3, 336, 336 }, t.shape);
        // hand-computed (v/255 - mean)/std per channel
        double[] expected = { (200 / 255.0 - 0.48145466) / 0.26862954, (30 / 255.0 - 0.4578275) / 0.26130258, (90 / 255.0 - 0.40821073) / 0.27577711 };
        for (int c = 0; c < 3; c++)
        {
            Assert.Equal(expected[c], t[c].min().ToDouble(), 5);
            Assert.Equal(expected[c], t[c].max().ToDouble(), 5);
        }
    }

    [Fact]
    public void Center_crop_takes_rows_56_to_391_of_a_336x448_image()
    {
        using var _ = NewDisposeScope();
        // width is already 336, so no resampling: each row y is coloured (y mod 256, 255 - y mod 256, x mod 256)
        var img = new RgbImage(336, 448);
        for (int y = 0; y < 448; y++) for (int x = 0; x < 336; x++) { img[y, x, 0] = (byte)(y % 256); img[y, x, 1] = (byte)(255 - y % 256); img[y, x, 2] = (byte)(x % 256); }
        var t = ClipImageProcessor.Preprocess(img, ImageAspectMode.CenterCrop);
        Assert.Equal(new long[] { 3, 336, 336 }, t.shape);
        foreach (var (oy, ox) in new[] { (0, 0), (0, 335), (100, 7), (335, 335), (200, 300) })
        {
            int sy = oy + 56; // (448 - 336) / 2
            Assert.Equal(Normalised((byte)(sy % 256), 0), t[0, oy, ox].ToSingle(), 5);
            Assert.Equal(Normalised((byte)(255 - sy % 256), 1), t[1, oy, ox].ToSingle(), 5);
            Assert.Equal(Normalised((byte)(ox % 256), 2), t[2, oy, ox].ToSingle(), 5);
        }
    }

    [Fact]
    public void Pad_mode_centres_the_image_on_the_mean_colour()
    {
        using var _ = NewDisposeScope();
        var img = RgbImage.Filled(336, 168, 10, 20, 30);
        var t = ClipImageProcessor.Preprocess(img, ImageAspectMode.Pad);
        // expand2square: background int(mean*255) = (122, 116, 104), image pasted at y = (336-168)/2 = 84
        byte[] bg = { 122, 116, 104 }, fg = { 10, 20, 30 };
        foreach (var y in new[] { 0, 83, 84, 251, 252, 335 })
        {
            var expectedColour = y is >= 84 and < 252 ? fg : bg;
            for (int c = 0; c < 3; c++) Assert.Equal(Normalised(expectedColour[c], c), t[c, y, 17].ToSingle(), 5);
        }
        // int(mean*255) truncates: 0.48145466*255 = 122.77 gives 122, not 123
        Assert.Equal(((byte)122, (byte)116, (byte)104), new ClipImageProcessorConfig().PadColor);
    }

    [Fact]
    public void Tall_image_pads_left_and_right()
    {
        var img = RgbImage.Filled(3, 7, 1, 2, 3);
        var sq = ClipImageProcessor.ExpandToSquare(img, (9, 9, 9));
        Assert.Equal((7, 7), (sq.Width, sq.Height));
        Assert.Equal(9, sq[0, 1, 0]);  // column 1 is background
        Assert.Equal(1, sq[0, 2, 0]);  // image pasted at x = (7-3)/2 = 2
        Assert.Equal(1, sq[6, 4, 0]);
        Assert.Equal(9, sq[6, 5, 0]);
    }

    [Fact]
    public void Png_round_trip_is_exact_and_jpeg_decodes()
    {
        var path = Path.Combine(Path.GetTempPath(), $"quecc-{Guid.NewGuid():N}.png");
        try
        {
            var src = RgbImage.Load(Fixture("rand_50x37.png"));
            src.SavePng(path);
            Assert.Equal(src.Pixels, RgbImage.Load(path).Pixels);
        }
        finally { File.Delete(path); }
        var jpg = RgbImage.Load(Fixture("solid_200_30_90.jpg"));
        Assert.Equal((40, 30), (jpg.Width, jpg.Height));
        Assert.InRange(jpg[15, 20, 0], 197, 203);
        Assert.InRange(jpg[15, 20, 1], 27, 33);
        Assert.InRange(jpg[15, 20, 2], 87, 93);
    }

    [Fact]
    public void Unreadable_files_name_the_file()
    {
        var bad = Fixture("not_an_image.png");
        var e = Assert.Throws<UserInputException>(() => RgbImage.Load(bad));
        Assert.Contains(bad, e.Message);
        Assert.DoesNotContain("\n", e.Message);
        var missing = Fixture("missing.png");
        var e2 = Assert.Throws<UserInputException>(() => ClipImageProcessor.Preprocess(missing));
        Assert.Contains(missing, e2.Message);
    }
}
