using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace QueCC.Model.Clip;

/// <summary>An 8-bit RGB image, row-major HWC bytes — the array PIL hands to CLIPImageProcessor.</summary>
public sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }
    /// <summary>Height·Width·3 bytes, row-major, channels R,G,B.</summary>
    public byte[] Pixels { get; }

    public RgbImage(int width, int height, byte[]? pixels = null)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"image size {width}x{height}: both sides must be positive");
        pixels ??= new byte[width * height * 3];
        if (pixels.Length != width * height * 3)
            throw new ArgumentException($"pixel buffer has {pixels.Length} bytes; expected {width}x{height}x3 = {width * height * 3}");
        (Width, Height, Pixels) = (width, height, pixels);
    }

    public byte this[int y, int x, int c]
    {
        get => Pixels[(y * Width + x) * 3 + c];
        set => Pixels[(y * Width + x) * 3 + c] = value;
    }

    public static RgbImage Filled(int width, int height, byte r, byte g, byte b)
    {
        var img = new RgbImage(width, height);
        for (int i = 0; i < width * height; i++) { img.Pixels[3 * i] = r; img.Pixels[3 * i + 1] = g; img.Pixels[3 * i + 2] = b; }
        return img;
    }

    /// <summary>Default of <see cref="MaxPixels"/>: 8192 × 8192 (PIL warns at 89.5M pixels; benchmark images are under 2 M).</summary>
    public const long DefaultMaxPixels = 8192L * 8192;

    /// <summary>Environment variable that overrides <see cref="MaxPixels"/> (a positive pixel count).</summary>
    public const string MaxPixelsVariable = "QUECC_MAX_IMAGE_PIXELS";

    /// <summary>
    /// Largest width × height <see cref="Load"/> decodes, read from the header before any pixel is decoded, so a
    /// few-hundred-byte file declaring 20000 × 20000 pixels (a decompression bomb) is refused at once.
    /// </summary>
    public static long MaxPixels
    {
        get
        {
            var text = Environment.GetEnvironmentVariable(MaxPixelsVariable);
            if (string.IsNullOrWhiteSpace(text)) return DefaultMaxPixels;
            return long.TryParse(text, out var v) && v > 0 ? v
                : throw new UserInputException(MaxPixelsVariable, "environment variable", text, "a positive pixel count");
        }
    }

    /// <summary>
    /// Decodes any format SkiaSharp reads (PNG, JPEG, WebP, GIF (first frame), BMP, ICO, WBMP); other files are
    /// rejected with the format named where SkiaSharp recognises it. Alpha is dropped without compositing, as PIL's
    /// convert("RGB"). A truncated file is rejected (SkiaSharp would fill the missing rows with zeros: an image the
    /// user never had).
    /// </summary>
    public static RgbImage Load(string path)
    {
        if (!File.Exists(path)) throw new UserInputException($"{path}: image file not found");
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length == 0) throw new UserInputException($"{path}: image file is empty");
        // The bytes go to SkiaSharp as native memory (SKData in an SKMemoryStream the codec owns), not as a managed Stream,
        // which native code would read through callbacks into a GC-managed wrapper (training processes that decoded images
        // that way died with SIGSEGV at random; since this change none has).
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(new SKMemoryStream(data), out var createResult)
            ?? throw new UserInputException($"{path}: not an image format SkiaSharp can read ({createResult}; {SniffFormat(bytes)}); expected PNG, JPEG, WebP, GIF or BMP");
        long pixels = (long)codec.Info.Width * codec.Info.Height;
        if (codec.Info.Width <= 0 || codec.Info.Height <= 0)
            throw new UserInputException($"{path}: {codec.EncodedFormat} header declares {codec.Info.Width}x{codec.Info.Height} pixels; expected positive sides");
        long max = MaxPixels;
        if (pixels > max)
            throw new UserInputException($"{path}: {codec.EncodedFormat} header declares {codec.Info.Width}x{codec.Info.Height} = {pixels} pixels, more than the limit {max} (set {MaxPixelsVariable} to raise it)");
        var info = new SKImageInfo(codec.Info.Width, codec.Info.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result == SKCodecResult.IncompleteInput)
            throw new UserInputException($"{path}: {codec.EncodedFormat} image is truncated ({bytes.Length} bytes; SkiaSharp reports incomplete input)");
        if (result != SKCodecResult.Success)
            throw new UserInputException($"{path}: {codec.EncodedFormat} image could not be decoded ({result})");
        var rgba = bitmap.Bytes;
        var img = new RgbImage(info.Width, info.Height);
        for (int i = 0; i < info.Width * info.Height; i++)
        {
            img.Pixels[3 * i] = rgba[4 * i];
            img.Pixels[3 * i + 1] = rgba[4 * i + 1];
            img.Pixels[3 * i + 2] = rgba[4 * i + 2];
        }
        return img;
    }

    /// <summary>Names common formats SkiaSharp does not decode, from their magic bytes, for the error message.</summary>
    private static string SniffFormat(byte[] b)
    {
        bool Starts(params byte[] magic) => b.Length >= magic.Length && b.AsSpan(0, magic.Length).SequenceEqual(magic);
        if (Starts(0x49, 0x49, 0x2A, 0x00) || Starts(0x4D, 0x4D, 0x00, 0x2A)) return "looks like TIFF";
        if (Starts(0x25, 0x50, 0x44, 0x46)) return "looks like PDF";
        if (Starts(0x3C, 0x3F, 0x78, 0x6D, 0x6C) || Starts(0x3C, 0x73, 0x76, 0x67)) return "looks like SVG/XML";
        if (b.Length >= 2 && b[0] == (byte)'P' && b[1] is >= (byte)'1' and <= (byte)'7') return "looks like PNM";
        if (b.Length >= 12 && b.AsSpan(4, 4).SequenceEqual("ftyp"u8)) return "looks like HEIF/AVIF";
        if (Starts(0x89, 0x50, 0x4E, 0x47)) return "PNG signature but unreadable header";
        if (Starts(0xFF, 0xD8)) return "JPEG signature but unreadable header";
        return "unrecognised signature";
    }

    /// <summary>Writes a PNG (lossless, so a round trip through <see cref="Load"/> is exact).</summary>
    public void SavePng(string path)
    {
        var info = new SKImageInfo(Width, Height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        var rgba = new byte[Width * Height * 4];
        for (int i = 0; i < Width * Height; i++)
        {
            rgba[4 * i] = Pixels[3 * i]; rgba[4 * i + 1] = Pixels[3 * i + 1]; rgba[4 * i + 2] = Pixels[3 * i + 2]; rgba[4 * i + 3] = 255;
        }
        System.Runtime.InteropServices.Marshal.Copy(rgba, 0, bitmap.GetPixels(), rgba.Length);
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        using var fs = File.Create(path);
        data.SaveTo(fs);
    }
}

/// <summary>How a non-square image becomes square: CLIP's shortest-side resize + center crop, or LLaVA's expand2square padding first.</summary>
public enum ImageAspectMode { CenterCrop, Pad }

/// <summary>CLIPImageProcessor settings (openai/clip-vit-large-patch14-336 defaults).</summary>
public sealed record ClipImageProcessorConfig
{
    public int ShortestEdge { get; init; } = 336;
    public int CropSize { get; init; } = 336;
    public float[] ImageMean { get; init; } = { 0.48145466f, 0.4578275f, 0.40821073f };
    public float[] ImageStd { get; init; } = { 0.26862954f, 0.26130258f, 0.27577711f };

    /// <summary>LLaVA's expand2square background: <c>tuple(int(x*255) for x in image_mean)</c>.</summary>
    public (byte R, byte G, byte B) PadColor => ((byte)(int)(ImageMean[0] * 255.0), (byte)(int)(ImageMean[1] * 255.0), (byte)(int)(ImageMean[2] * 255.0));

    public static ClipImageProcessorConfig ForImageSize(int size) => new() { ShortestEdge = size, CropSize = size };
}

/// <summary>CLIPImageProcessor re-implemented step for step: RGB → (pad) → PIL bicubic shortest-side resize → center crop → /255 → normalise.</summary>
public static class ClipImageProcessor
{
    /// <summary>Loads and preprocesses one image file into (3, S, S) float32.</summary>
    public static Tensor Preprocess(string path, ImageAspectMode mode = ImageAspectMode.Pad, ClipImageProcessorConfig? cfg = null)
        => Preprocess(RgbImage.Load(path), mode, cfg);

    /// <summary>(3, S, S) float32, CHW.</summary>
    public static Tensor Preprocess(RgbImage image, ImageAspectMode mode = ImageAspectMode.Pad, ClipImageProcessorConfig? cfg = null)
    {
        cfg ??= new ClipImageProcessorConfig();
        var img = mode == ImageAspectMode.Pad ? ExpandToSquare(image, cfg.PadColor) : image;
        img = ResizeShortestEdge(img, cfg.ShortestEdge);
        img = CenterCrop(img, cfg.CropSize, cfg.CropSize);
        return ToNormalizedTensor(img, cfg.ImageMean, cfg.ImageStd);
    }

    /// <summary>LLaVA's expand2square: paste centred (offset floor-divided) on a square of the background colour.</summary>
    public static RgbImage ExpandToSquare(RgbImage img, (byte R, byte G, byte B) bg)
    {
        if (img.Width == img.Height) return img;
        int side = Math.Max(img.Width, img.Height);
        var outImg = RgbImage.Filled(side, side, bg.R, bg.G, bg.B);
        int ox = img.Width > img.Height ? 0 : (img.Height - img.Width) / 2;
        int oy = img.Width > img.Height ? (img.Width - img.Height) / 2 : 0;
        for (int y = 0; y < img.Height; y++)
            Buffer.BlockCopy(img.Pixels, y * img.Width * 3, outImg.Pixels, ((y + oy) * side + ox) * 3, img.Width * 3);
        return outImg;
    }

    /// <summary>HF get_resize_output_image_size with default_to_square=False: short side → size, long side → int(size·long/short).</summary>
    public static (int Width, int Height) ShortestEdgeSize(int width, int height, int size)
    {
        bool wShort = width <= height;
        int shortSide = wShort ? width : height, longSide = wShort ? height : width;
        int newLong = (int)((double)(size * longSide) / shortSide);
        return wShort ? (size, newLong) : (newLong, size);
    }

    public static RgbImage ResizeShortestEdge(RgbImage img, int size)
    {
        var (w, h) = ShortestEdgeSize(img.Width, img.Height, size);
        return PilBicubic.Resize(img, w, h);
    }

    /// <summary>HF center_crop: top = (H − h) / 2, left = (W − w) / 2, integer division.</summary>
    public static RgbImage CenterCrop(RgbImage img, int cropW, int cropH)
    {
        if (img.Width < cropW || img.Height < cropH)
            throw new ArgumentException($"image {img.Width}x{img.Height} is smaller than the crop {cropW}x{cropH}");
        int top = (img.Height - cropH) / 2, left = (img.Width - cropW) / 2;
        var outImg = new RgbImage(cropW, cropH);
        for (int y = 0; y < cropH; y++)
            Buffer.BlockCopy(img.Pixels, ((y + top) * img.Width + left) * 3, outImg.Pixels, y * cropW * 3, cropW * 3);
        return outImg;
    }

    /// <summary>(3, H, W): float32(v/255) then (x − mean)/std in float32, as HF rescale + normalize.</summary>
    public static Tensor ToNormalizedTensor(RgbImage img, float[] mean, float[] std)
    {
        int hw = img.Width * img.Height;
        var data = new float[3 * hw];
        for (int i = 0; i < hw; i++)
            for (int c = 0; c < 3; c++)
            {
                float x = (float)(img.Pixels[3 * i + c] * (1.0 / 255.0));
                data[c * hw + i] = (x - mean[c]) / std[c];
            }
        return torch.tensor(data, new long[] { 3, img.Height, img.Width });
    }
}

/// <summary>PIL's Image.resize(BICUBIC) for 8-bit images (Resample.c): separable, antialiased when shrinking, 22-bit fixed point, rounding to uint8 after each pass.</summary>
public static class PilBicubic
{
    private const int PrecisionBits = 32 - 8 - 2;
    private const double Support = 2.0;

    private static double Filter(double x)
    {
        const double a = -0.5;
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }

    private static (int[] Bounds, int[] Kk, int KSize) Coeffs(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double filterscale = Math.Max(scale, 1.0);
        double support = Support * filterscale;
        int ksize = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[outSize * 2];
        var kk = new int[outSize * ksize];
        var pre = new double[ksize];
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = (xx + 0.5) * scale;
            double ww = 0.0, ss = 1.0 / filterscale;
            int xmin = (int)(center - support + 0.5);
            if (xmin < 0) xmin = 0;
            int xmax = (int)(center + support + 0.5);
            if (xmax > inSize) xmax = inSize;
            xmax -= xmin;
            Array.Clear(pre);
            for (int x = 0; x < xmax; x++) { double w = Filter((x + xmin - center + 0.5) * ss); pre[x] = w; ww += w; }
            for (int x = 0; x < xmax; x++) if (ww != 0.0) pre[x] /= ww;
            for (int x = 0; x < ksize; x++)
                kk[xx * ksize + x] = pre[x] < 0 ? (int)(-0.5 + pre[x] * (1 << PrecisionBits)) : (int)(0.5 + pre[x] * (1 << PrecisionBits));
            bounds[2 * xx] = xmin; bounds[2 * xx + 1] = xmax;
        }
        return (bounds, kk, ksize);
    }

    private static byte Clip8(int v)
    {
        if (v >= (1 << PrecisionBits << 8)) return 255;
        if (v <= 0) return 0;
        return (byte)(v >> PrecisionBits);
    }

    public static RgbImage Resize(RgbImage img, int width, int height)
    {
        var cur = img;
        if (width != cur.Width)
        {
            var (bounds, kk, ksize) = Coeffs(cur.Width, width);
            var outImg = new RgbImage(width, cur.Height);
            for (int y = 0; y < cur.Height; y++)
                for (int xx = 0; xx < width; xx++)
                {
                    int xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1];
                    for (int c = 0; c < 3; c++)
                    {
                        int ss = 1 << (PrecisionBits - 1);
                        for (int x = 0; x < xmax; x++) ss += cur[y, x + xmin, c] * kk[xx * ksize + x];
                        outImg[y, xx, c] = Clip8(ss);
                    }
                }
            cur = outImg;
        }
        if (height != cur.Height)
        {
            var (bounds, kk, ksize) = Coeffs(cur.Height, height);
            var outImg = new RgbImage(cur.Width, height);
            for (int yy = 0; yy < height; yy++)
            {
                int ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1];
                for (int x = 0; x < cur.Width; x++)
                    for (int c = 0; c < 3; c++)
                    {
                        int ss = 1 << (PrecisionBits - 1);
                        for (int y = 0; y < ymax; y++) ss += cur[y + ymin, x, c] * kk[yy * ksize + y];
                        outImg[yy, x, c] = Clip8(ss);
                    }
            }
            cur = outImg;
        }
        return ReferenceEquals(cur, img) ? new RgbImage(img.Width, img.Height, (byte[])img.Pixels.Clone()) : cur;
    }
}
